# Minimal: one region, the smallest machines that run the reference model
# (Mistral-7B-OpenOrca Q4_K_M, ~4.4 GB file, ~6 GB resident at a 2048-token context).
#   1 x g6-nanode-1 edge + 1 x g6-standard-4 (8 GB) model server + 2 NodeBalancers (the edge's
#   stable address and the model hub's) + Object Storage + one 10 GB volume (Caddy's certificates)
#   Estimated $0.118/hour, $79/month (price_table as of 2026-09-17; `terraform output estimated_cost`).
# Secrets are not in this file: see secrets.auto.tfvars.example.
#
#   cd terraform && terraform apply -var-file=examples/minimal.tfvars

edge_regions  = ["us-ord"]
model_regions = { "us-ord" = 1 }

edge_instance_type = "g6-nanode-1"
# Shared CPU is the cheapest 8 GB plan. For steady decode speed under sustained load use
# g6-dedicated-4 (+$0.036/hour).
model_instance_type = "g6-standard-4"

# Where you pushed the images (docs/deployment.md, "Build and push the images").
image_registry  = "ghcr.io/your-org/moviemind"
edge_image_tag  = "0.1.0"
model_image_tag = "0.1.0"
# The digests `docker buildx build --push --metadata-file` printed for those tags (section 2 of
# docs/deployment.md): instances pull by digest. Replace these placeholders.
edge_image_digest  = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
model_image_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

# The reference model (the default preset): Mistral-7B-OpenOrca Q4_K_M, uploaded once to the
# bucket (docs/deployment.md, "Upload the model"), fetched from there by each model server and
# verified against model_gguf_sha256 (secrets.auto.tfvars).
model_preset = "mistral-7b-openorca-q4km"
model_slots  = 1

index_region = "us-ord"

# HTTPS: after `terraform apply -target=linode_nodebalancer.edge`, point this name's A and AAAA
# records at the edge NodeBalancer (`terraform output edge_addresses`), then apply everything.
edge_hostnames = { "us-ord" = "movies.example.com" }
index_bucket   = "moviemind-index-your-org"

# Add your key and address to be able to SSH in; with none, use the Lish console.
ssh_authorized_keys = []
admin_cidrs         = []
