# The index and the model file live in one Object Storage bucket; `python -m index_builder
# publish` uploads a bundle and moves <prefix>/latest.json, and every edge polls that pointer.

resource "linode_object_storage_bucket" "index" {
  region = var.index_region
  label  = var.index_bucket
  acl    = "private"
}

# The edges' key can only read this one bucket. Publishing uses a separate read_write key that
# Terraform does not create, so its secret never lands in the state (docs/deployment.md).
resource "linode_object_storage_key" "edge" {
  label = "${var.project}-edge-read"

  bucket_access {
    bucket_name = linode_object_storage_bucket.index.label
    region      = var.index_region
    permissions = "read_only"
  }
}

# The model servers' key: read-only on the same bucket, where the model file lives under
# models/ (uploaded once with `python -m model_server weights upload`, docs/deployment.md).
# Every replacement server fetches it from here, next to it, not from an outside host.
resource "linode_object_storage_key" "model" {
  label = "${var.project}-model-read"

  bucket_access {
    bucket_name = linode_object_storage_bucket.index.label
    region      = var.index_region
    permissions = "read_only"
  }
}

locals {
  # s3_endpoint is a host name such as "us-ord-1.linodeobjects.com"; its first label is the
  # signing region S3 clients need.
  s3_endpoint = "https://${linode_object_storage_bucket.index.s3_endpoint}"
  s3_region   = split(".", linode_object_storage_bucket.index.s3_endpoint)[0]
}
