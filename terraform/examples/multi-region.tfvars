# Multi-region: edges in three regions, model servers in two hubs. Chicago has two model
# servers behind a NodeBalancer; Frankfurt has one. Each edge calls the nearest hub first:
#   us-ord -> us-ord, eu-central;  eu-central -> eu-central, us-ord;  ap-south -> eu-central, us-ord
#   3 x g6-nanode-1 edges + 3 x g6-dedicated-4 model servers + 1 NodeBalancer + Object Storage
#   Estimated $0.369/hour, $246/month (price_table as of 2026-09-17; `terraform output estimated_cost`).
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

model_gguf_url = "https://huggingface.co/TheBloke/Mistral-7B-OpenOrca-GGUF/resolve/main/mistral-7b-openorca.Q4_K_M.gguf"
model_engine   = "ctransformers"
model_context  = 2048
# Two generations at once per server, two threads each on the 4 dedicated vCPUs.
model_slots = 2
model_queue = 8

index_region = "us-ord"
index_bucket = "moviemind-index-your-org"

# Optional: one DNS name per edge for HTTPS (create the A/AAAA records from the edge_addresses
# output, then apply again or wait for Caddy's retry).
# edge_hostnames = {
#   "us-ord"     = "us.movies.example.com"
#   "eu-central" = "eu.movies.example.com"
#   "ap-south"   = "ap.movies.example.com"
# }

ssh_authorized_keys = []
admin_cidrs         = []
tags                = ["production"]
