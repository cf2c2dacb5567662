# Multi-region: edges in three regions, model servers in two hubs, each behind its own
# NodeBalancer. Chicago has two model servers; Frankfurt has one. Each edge calls the nearest hub first:
#   us-ord -> us-ord, eu-central;  eu-central -> eu-central, us-ord;  ap-south -> eu-central, us-ord
#   3 x g6-nanode-1 edges + 3 x g6-dedicated-4 model servers + 5 NodeBalancers (one per hub,
#   one per edge region) + Object Storage + three 10 GB volumes (Caddy's certificates)
#   Estimated $0.433/hour, $289/month (price_table as of 2026-09-17; `terraform output estimated_cost`).
# Secrets are not in this file: see secrets.auto.tfvars.example.
#
#   cd terraform && terraform apply -var-file=examples/multi-region.tfvars

edge_regions = ["us-ord", "eu-central", "ap-south"]
model_regions = {
  "us-ord"     = 2
  "eu-central" = 1
}

edge_instance_type  = "g6-nanode-1"
model_instance_type = "g6-dedicated-4"

image_registry  = "ghcr.io/your-org/moviemind"
edge_image_tag  = "0.1.0"
model_image_tag = "0.1.0"
# The digests `docker buildx build --push --metadata-file` printed for those tags (section 2 of
# docs/deployment.md): instances pull by digest. Replace these placeholders.
edge_image_digest  = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
model_image_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

model_preset = "mistral-7b-openorca-q4km"
# Two generations at once per server, two threads each on the 4 dedicated vCPUs, and two
# waiting: the edges' timeouts follow from these (docs/deployment.md, "Timeouts and queue sizes").
model_slots = 2
model_queue = 2

index_region = "us-ord"
index_bucket = "moviemind-index-your-org"

# One DNS name per edge for HTTPS: A and AAAA records at the edge NodeBalancers (edge_addresses).
edge_hostnames = {
  "us-ord"     = "us.movies.example.com"
  "eu-central" = "eu.movies.example.com"
  "ap-south"   = "ap.movies.example.com"
}

# Prometheus and Alertmanager next to every edge and model server (127.0.0.1:9090 and 9093);
# set alert_webhook_url in secrets.auto.tfvars so the alerts reach someone.
monitoring = true

ssh_authorized_keys = []
admin_cidrs         = []
tags                = ["production"]
