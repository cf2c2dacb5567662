# Outputs never contain a secret: no token, API key, registry password, S3 secret or private
# key (tests/test_terraform.py enforces this). The edges' S3 key lives only in their cloud-init.

output "edge_urls" {
  description = "Public URL of each edge, by region (https when edge_hostnames names it)."
  value       = local.edge_url
}

output "edge_reserved_ipv4" {
  description = "The reserved IPv4 address of each edge region (edge_reserved_ipv4): create the DNS A records for edge_hostnames here. Known after `terraform apply -target=linode_networking_ip.edge`, before any instance exists."
  value       = { for e, ip in linode_networking_ip.edge : e => ip.address }
}

output "edge_addresses" {
  description = "Public IPv4 (reserved, when edge_reserved_ipv4) and IPv6 of each edge, by region: point DNS records here (the IPv6 address changes when an edge is re-created)."
  value       = { for e in var.edge_regions : e => { ipv4 = local.edge_ipv4[e], ipv6 = split("/", linode_instance.edge[e].ipv6)[0] } }
}

output "edge_upstream_order" {
  description = "For each edge region, the model regions it calls, nearest first."
  value       = local.edge_model_order
}

output "model_endpoints" {
  description = "Model endpoint per model region: the URL edges call, its NodeBalancer's address, the release it runs, and its servers' VPC addresses."
  value = {
    for r, n in var.model_regions : r => {
      url     = local.model_url[r]
      address = local.model_address[r]
      release = { image_tag = local.model_release[r].image_tag, preset = local.model_release[r].preset }
      servers = { for k, s in local.model_servers : k => s.vpc_ip if s.region == r }
    }
  }
}

output "model_ca_cert_pem" {
  description = "The private CA certificate the model servers' TLS certificates chain to (public). Use it with curl --cacert to probe a model server from an admin host."
  value       = tls_self_signed_cert.model_ca.cert_pem
}

output "index" {
  description = "Where the index lives. Publish with a read_write key of your own (docs/deployment.md); the edges hold a read-only key."
  value = {
    url         = local.index_url
    bucket      = linode_object_storage_bucket.index.label
    region      = var.index_region
    s3_endpoint = local.s3_endpoint
    s3_region   = local.s3_region
  }
}

output "estimated_cost" {
  description = "Estimated cost in USD from var.price_table (dated): per line, per hour and per month (Linode caps each service at its monthly price). Transfer overage and taxes excluded."
  value = {
    price_table_as_of = var.price_table.as_of
    hourly_usd        = local.cost_hourly
    monthly_usd       = local.cost_monthly
    lines             = local.cost_lines
  }
}

check "price_table_covers_plans" {
  assert {
    condition     = contains(keys(var.price_table.instance), var.edge_instance_type) && contains(keys(var.price_table.instance), var.model_instance_type)
    error_message = "price_table has no price for ${var.edge_instance_type} or ${var.model_instance_type}: estimated_cost counts it as 0. Add the plan to price_table.instance."
  }
}
