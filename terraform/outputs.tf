# Outputs never contain a secret: no token, API key, registry password, S3 secret or private
# key (tests/test_terraform.py enforces this). The edges' S3 key lives only in their cloud-init.

output "edge_urls" {
  description = "Public URL of each edge, by region (https when edge_hostnames names it)."
  value       = local.edge_url
}

output "edge_addresses" {
  description = "IPv4 and IPv6 of each edge region's NodeBalancer: point the A and AAAA records of edge_hostnames here. They never change, whatever happens to the edges behind them. Known after `terraform apply -target=linode_nodebalancer.edge`, before any edge exists."
  value       = { for e in var.edge_regions : e => { ipv4 = linode_nodebalancer.edge[e].ipv4, ipv6 = linode_nodebalancer.edge[e].ipv6 } }
}

output "edge_release_ids" {
  description = "The release each edge region runs (a digest of its cloud-init). To hold regions during an edge rollout, copy their entries into edge_hold."
  value       = { for e in var.edge_regions : e => terraform_data.edge_release[e].output }
}

output "model_release_ids" {
  description = "The release each model region runs (a digest of its cloud-init). To hold regions during a model rollout, copy their entries into model_hold."
  value       = { for r, n in var.model_regions : r => terraform_data.model_release["${r}-1"].output }
}

output "edge_upstream_order" {
  description = "For each edge region, the model regions it calls, nearest first."
  value       = local.edge_model_order
}

output "model_endpoints" {
  description = "Model endpoint per model region: the URL edges call, its NodeBalancer's address, and its servers' VPC addresses (assigned by the API)."
  value = {
    for r, n in var.model_regions : r => {
      url     = local.model_url[r]
      address = local.model_address[r]
      servers = { for k, s in local.model_servers : k => linode_instance.model[k].interface[1].ipv4[0].vpc if s.region == r }
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

output "feedback_database" {
  description = "The managed feedback database (null when feedback_database = false): where it is and who may connect. No credentials: `linode-cli databases postgresql-creds-view ID` shows them to an admin."
  value = var.feedback_database ? {
    id         = linode_database_postgresql_v2.feedback[0].id
    host       = linode_database_postgresql_v2.feedback[0].host_primary
    port       = linode_database_postgresql_v2.feedback[0].port
    region     = local.feedback_database_region
    type       = var.feedback_database_type
    engine_id  = var.feedback_database_engine
    allow_list = local.feedback_allow_list
  } : null
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

check "feedback_database_is_priced" {
  assert {
    condition     = !var.feedback_database || var.feedback_database_price != null
    error_message = "feedback_database_price is not set: estimated_cost counts the managed PostgreSQL as 0. Look up ${var.feedback_database_type} in GET https://api.linode.com/v4/databases/types (engines.postgresql, quantity 1) and set it."
  }
}
