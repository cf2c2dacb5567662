# Multi-region: edges in three regions, model servers in two hubs, each behind its own
# NodeBalancer. Chicago has two model servers; Frankfurt has one. Each edge calls the nearest hub first:
#   us-ord -> us-ord, eu-central;  eu-central -> eu-central, us-ord;  ap-south -> eu-central, us-ord
#   3 x g6-nanode-1 edges + 3 x g6-dedicated-4 model servers + 2 NodeBalancers (one per hub)
#   + Object Storage (+ three reserved IPv4 for the edges, priced separately by Akamai)
#   Estimated $0.384/hour, $256/month (price_table as of 2026-09-17; `terraform output estimated_cost`).
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

model_preset = "mistral-7b-openorca-q4km"
# Two generations at once per server, two threads each on the 4 dedicated vCPUs.
model_slots = 2
model_queue = 8

index_region = "us-ord"
index_bucket = "moviemind-index-your-org"

# One DNS name per edge for HTTPS: A records at the reserved addresses (edge_addresses output).
edge_hostnames = {
  "us-ord"     = "us.movies.example.com"
  "eu-central" = "eu.movies.example.com"
  "ap-south"   = "ap.movies.example.com"
}

# Prometheus next to every edge and model server, alert rules included (127.0.0.1:9090).
monitoring = true

ssh_authorized_keys = []
admin_cidrs         = []
tags                = ["production"]
