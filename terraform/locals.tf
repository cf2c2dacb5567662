locals {
  # Linode core compute regions: where each data center is, for "nearest model region first".
  # Terraform has no trigonometry, so each entry also carries its point on the unit sphere
  # (x = cos(lat)cos(lon), y = cos(lat)sin(lon), z = sin(lat)); the straight-line (chord)
  # distance between two such points orders regions exactly as great-circle distance does.
  # tests/test_terraform.py recomputes x/y/z from lat/lon and checks the ordering.
  # object_storage: the region has Object Storage (the index bucket; var.index_region's list).
  regions = {
    "us-east"      = { city = "Newark, NJ", lat = 40.7357, lon = -74.1724, x = 0.20667, y = -0.72900, z = 0.65257, object_storage = true }
    "us-central"   = { city = "Dallas, TX", lat = 32.7767, lon = -96.797, x = -0.09951, y = -0.83488, z = 0.54137, object_storage = false }
    "us-west"      = { city = "Fremont, CA", lat = 37.5485, lon = -121.9886, x = -0.42001, y = -0.67245, z = 0.60943, object_storage = false }
    "us-southeast" = { city = "Atlanta, GA", lat = 33.749, lon = -84.388, x = 0.08131, y = -0.82749, z = 0.55556, object_storage = true }
    "us-ord"       = { city = "Chicago, IL", lat = 41.8781, lon = -87.6298, x = 0.03079, y = -0.74393, z = 0.66755, object_storage = true }
    "us-iad"       = { city = "Washington, DC", lat = 38.9072, lon = -77.0369, x = 0.17456, y = -0.75833, z = 0.62806, object_storage = true }
    "us-sea"       = { city = "Seattle, WA", lat = 47.6062, lon = -122.3321, x = -0.36059, y = -0.56969, z = 0.73853, object_storage = true }
    "us-mia"       = { city = "Miami, FL", lat = 25.7617, lon = -80.1918, x = 0.15342, y = -0.88745, z = 0.43463, object_storage = true }
    "us-lax"       = { city = "Los Angeles, CA", lat = 34.0522, lon = -118.2437, x = -0.39208, y = -0.72989, z = 0.55995, object_storage = true }
    "ca-central"   = { city = "Toronto", lat = 43.6532, lon = -79.3832, x = 0.13330, y = -0.71115, z = 0.69029, object_storage = false }
    "br-gru"       = { city = "Sao Paulo", lat = -23.5505, lon = -46.6333, x = 0.62947, y = -0.66642, z = -0.39956, object_storage = true }
    "eu-west"      = { city = "London", lat = 51.5074, lon = -0.1278, x = 0.62241, y = -0.00139, z = 0.78269, object_storage = false }
    "gb-lon"       = { city = "London 2", lat = 51.5074, lon = -0.1278, x = 0.62241, y = -0.00139, z = 0.78269, object_storage = true }
    "eu-central"   = { city = "Frankfurt", lat = 50.1109, lon = 8.6821, x = 0.63396, y = 0.09681, z = 0.76729, object_storage = true }
    "de-fra-2"     = { city = "Frankfurt 2", lat = 50.1109, lon = 8.6821, x = 0.63396, y = 0.09681, z = 0.76729, object_storage = true }
    "fr-par"       = { city = "Paris", lat = 48.8566, lon = 2.3522, x = 0.65739, y = 0.02700, z = 0.75307, object_storage = true }
    "nl-ams"       = { city = "Amsterdam", lat = 52.3676, lon = 4.9041, x = 0.60836, y = 0.05220, z = 0.79194, object_storage = true }
    "se-sto"       = { city = "Stockholm", lat = 59.3293, lon = 18.0686, x = 0.48495, y = 0.15821, z = 0.86011, object_storage = true }
    "it-mil"       = { city = "Milan", lat = 45.4642, lon = 9.19, x = 0.69235, y = 0.11201, z = 0.71281, object_storage = true }
    "es-mad"       = { city = "Madrid", lat = 40.4168, lon = -3.7038, x = 0.75976, y = -0.04918, z = 0.64834, object_storage = true }
    "ap-west"      = { city = "Mumbai", lat = 19.076, lon = 72.8777, x = 0.27824, y = 0.90320, z = 0.32682, object_storage = false }
    "in-bom-2"     = { city = "Mumbai 2", lat = 19.076, lon = 72.8777, x = 0.27824, y = 0.90320, z = 0.32682, object_storage = false }
    "in-maa"       = { city = "Chennai", lat = 13.0827, lon = 80.2707, x = 0.16461, y = 0.96003, z = 0.22636, object_storage = true }
    "ap-south"     = { city = "Singapore", lat = 1.3521, lon = 103.8198, x = -0.23880, y = 0.97078, z = 0.02360, object_storage = true }
    "sg-sin-2"     = { city = "Singapore 2", lat = 1.3521, lon = 103.8198, x = -0.23880, y = 0.97078, z = 0.02360, object_storage = true }
    "id-cgk"       = { city = "Jakarta", lat = -6.2088, lon = 106.8456, x = -0.28809, y = 0.95148, z = -0.10815, object_storage = true }
    "ap-northeast" = { city = "Tokyo 2", lat = 35.6762, lon = 139.6503, x = -0.61908, y = 0.52594, z = 0.58320, object_storage = false }
    "jp-tyo-3"     = { city = "Tokyo 3", lat = 35.6762, lon = 139.6503, x = -0.61908, y = 0.52594, z = 0.58320, object_storage = true }
    "jp-osa"       = { city = "Osaka", lat = 34.6937, lon = 135.5023, x = -0.58646, y = 0.57627, z = 0.56919, object_storage = true }
    "ap-southeast" = { city = "Sydney", lat = -33.8688, lon = 151.2093, x = -0.72768, y = 0.39989, z = -0.55729, object_storage = false }
    "au-mel"       = { city = "Melbourne", lat = -37.8136, lon = 144.9631, x = -0.64685, y = 0.45355, z = -0.61309, object_storage = true }
  }

  # Names the edges use for model endpoints. ".internal" is reserved for private use (ICANN,
  # 2024), so it never collides with a public name; each edge maps these names to addresses
  # in its containers' /etc/hosts, and the model TLS certificates are issued for them.
  internal_domain = "moviemind.internal"
  model_hostname  = { for r, n in var.model_regions : r => "mm-${r}.${local.internal_domain}" }
  model_url       = { for r, n in var.model_regions : r => "https://${local.model_hostname[r]}:${var.model_port}" }

  # Every model region has a VPC and a NodeBalancer in it; so does every edge region. VPCs are
  # separate per region, so each uses the same private range. Servers take whatever address
  # the API assigns them (a create_before_destroy replacement cannot take the address its
  # predecessor still holds), and the NodeBalancer node follows the server's assigned address.
  # The NodeBalancer's own range (it connects to the servers from it) is a /30 near the start
  # of the subnet: inside the subnet, clear of its reserved network, gateway and broadcast
  # addresses, as the API requires ("All IP addresses within the specified range must be free",
  # Linode API changelog 2025-06-30); the servers are created after it, so they never take it.
  model_vpc_subnet   = "10.77.0.0/24"
  model_vpc_nb_range = "10.77.0.4/30"
  edge_vpc_subnet    = "10.78.0.0/24"
  edge_vpc_nb_range  = "10.78.0.4/30"
  model_server_port  = 8001

  # One entry per model server: "us-ord-1", "us-ord-2", ...
  model_servers = merge([
    for r, n in var.model_regions : {
      for i in range(n) : "${r}-${i + 1}" => { region = r, ordinal = i + 1 }
    }
  ]...)

  # What an edge connects to for each model region: its NodeBalancer, whose address does not
  # change when the servers behind it are replaced.
  model_address = { for r, n in var.model_regions : r => linode_nodebalancer.model[r].ipv4 }

  # The reference model comes from this deployment's own bucket (uploaded once:
  # docs/deployment.md, "Upload the model"), so no outside host is needed to replace a server.
  # The checksum is not pinned (null): model_gguf_sha256 supplies it, verified at upload.
  model_presets = {
    "mistral-7b-openorca-q4km" = {
      url    = join("", ["s3://", var.index_bucket, "/models/mistral-7b-openorca.Q4_K_M.gguf"])
      sha256 = null
      engine = "ctransformers"
      size   = "7b"
    }
    "smollm2-135m-demo" = { url = "", sha256 = "", engine = "ctransformers", size = "135m" }
    "custom"            = { url = var.model_gguf_url, sha256 = null, engine = "ctransformers", size = "7b" }
  }

  # What each size class costs in memory and time (docs/deployment.md, "Timeouts and queue
  # sizes", has the arithmetic). Decode is bound by memory bandwidth: every generated token
  # reads all 4.4 GB of a 7B Q4_K_M, so ~30 GB/s gives at most ~7 tokens/s; 6 is planned.
  # Prefill (the prompt) is compute bound: ~40 tokens/s on 4 vCPUs. One answer is a ~600-token
  # prompt and ~160 generated tokens (five one-line reasons). Memory: the file (mapped), the
  # runtime, and per slot a KV cache of kv_kb_per_token x context (f16 K and V:
  # 2 x 32 layers x 8 KV heads x 128 dims x 2 bytes = 128 KiB per token for Mistral-7B).
  model_sizes = {
    "7b"   = { context = 2048, file_mb = 4370, runtime_mb = 1024, kv_kb_per_token = 128, decode_tps = 6, prefill_tps = 40, prompt_tokens = 600, answer_tokens = 160, min_timeout_s = 10 }
    "135m" = { context = 2048, file_mb = 98, runtime_mb = 512, kv_kb_per_token = 23, decode_tps = 100, prefill_tps = 1000, prompt_tokens = 600, answer_tokens = 160, min_timeout_s = 30 }
  }

  # RAM of each plan the price table knows, for the memory check.
  plan_memory_mb = {
    "g6-nanode-1"    = 1024, "g6-standard-1" = 2048, "g6-standard-2" = 4096, "g6-standard-4" = 8192,
    "g6-standard-6"  = 16384, "g6-standard-8" = 32768, "g6-dedicated-2" = 4096, "g6-dedicated-4" = 8192,
    "g6-dedicated-8" = 16384, "g6-dedicated-16" = 32768,
  }

  model_release_current = {
    image_tag   = var.model_image_tag
    preset      = var.model_preset
    gguf_url    = var.model_preset == "custom" ? var.model_gguf_url : local.model_presets[var.model_preset].url
    gguf_sha256 = var.model_gguf_sha256 != "" ? var.model_gguf_sha256 : (local.model_presets[var.model_preset].sha256 == null ? "" : local.model_presets[var.model_preset].sha256)
    engine      = var.model_engine != "" ? var.model_engine : local.model_presets[var.model_preset].engine
  }
  model_size    = local.model_sizes[local.model_presets[var.model_preset].size]
  model_context = var.model_context > 0 ? var.model_context : local.model_size.context

  # Memory one server needs: the file, the runtime, and a KV cache per slot.
  model_memory_mb = local.model_size.file_mb + local.model_size.runtime_mb + var.model_slots * ceil(local.model_context * local.model_size.kv_kb_per_token / 1024)

  # Timeouts from throughput, never below min_timeout_s (the 135M demo computes to a few
  # seconds, which a small shared plan under load does not keep). The server finishes about one answer per model_answer_s whatever
  # model_slots is (slots share the memory bandwidth), so a request admitted behind
  # model_queue waiting and model_slots running ones starts after (queue + slots) answers, then
  # prefills its prompt at 1/slots of the speed. 20% headroom on top. Beyond model_queue the
  # server answers 429 at once and the edge moves on, instead of timing out later.
  model_prefill_s       = ceil(local.model_size.prompt_tokens / local.model_size.prefill_tps)
  model_decode_s        = ceil(local.model_size.answer_tokens / local.model_size.decode_tps)
  model_answer_s        = local.model_prefill_s + local.model_decode_s
  first_token_timeout_s = max(local.model_size.min_timeout_s, ceil(1.2 * ((var.model_queue + var.model_slots) * local.model_answer_s + var.model_slots * local.model_prefill_s)))
  total_timeout_s       = local.first_token_timeout_s + max(local.model_size.min_timeout_s, ceil(1.2 * var.model_slots * local.model_decode_s))
  model_deadline_s      = local.total_timeout_s + 30
  # Longer than this, a queued request is better answered with catalog reasons at once.
  max_first_token_timeout_s = 300

  # For every edge, the model regions nearest first. The sort key is the chord distance in
  # millionths plus 10^7, so every key has the same number of digits and a string sort is a
  # numeric sort; ties (two data centers in one city) fall back to the region id.
  edge_model_order = {
    for e in var.edge_regions : e => [
      for k in sort([
        for m, n in var.model_regions : format("%d|%s", 10000000 + floor(1000000 * pow(
          pow(local.regions[e].x - local.regions[m].x, 2) +
          pow(local.regions[e].y - local.regions[m].y, 2) +
        pow(local.regions[e].z - local.regions[m].z, 2), 0.5)), m)
      ]) : split("|", k)[1]
    ]
  }
  edge_upstreams = { for e in var.edge_regions : e => join(",", [for m in local.edge_model_order[e] : local.model_url[m]]) }

  # Each edge's own public IPv4: the source of its calls to the model NodeBalancers (their
  # firewall admits these). Clients never use it: they reach the edge region's NodeBalancer.
  edge_ipv4 = {
    for e in var.edge_regions : e => one([for ip in linode_instance.edge[e].ipv4 : ip if !startswith(ip, "192.168.")])
  }

  # Caddy site address: the edge's DNS name (automatic HTTPS), or ":80" only when plain HTTP
  # was asked for (a precondition on the edges enforces one of the two).
  edge_site_address = { for e in var.edge_regions : e => lookup(var.edge_hostnames, e, ":80") }
  edge_url = {
    for e in var.edge_regions : e => (contains(keys(var.edge_hostnames), e) ? "https://${var.edge_hostnames[e]}" : "http://${linode_nodebalancer.edge[e].ipv4}")
  }

  # Images by digest: a tag can be moved to other content, a digest cannot.
  edge_image     = "${var.image_registry}/edge:${var.edge_image_tag}@${var.edge_image_digest}"
  registry_host  = split("/", var.image_registry)[0]
  index_url      = "s3://${var.index_bucket}/${var.index_prefix}"
  admin_ipv4     = [for c in var.admin_cidrs : c if !strcontains(c, ":")]
  admin_ipv6     = [for c in var.admin_cidrs : c if strcontains(c, ":")]
  edge_ipv4_cidr = [for e in var.edge_regions : "${local.edge_ipv4[e]}/32"]
  edge_ipv6_cidr = [for e in var.edge_regions : linode_instance.edge[e].ipv6]
  common_tags    = distinct(concat([var.project], var.tags))

  # Cost estimate from the price table. A plan missing from the table counts as 0 and the
  # check block in outputs.tf warns.
  zero_price  = { hourly = 0, monthly = 0 }
  edge_price  = lookup(var.price_table.instance, var.edge_instance_type, local.zero_price)
  model_price = lookup(var.price_table.instance, var.model_instance_type, local.zero_price)
  cost_lines = {
    edges          = { count = length(var.edge_regions), plan = var.edge_instance_type, hourly = length(var.edge_regions) * local.edge_price.hourly, monthly = length(var.edge_regions) * local.edge_price.monthly }
    model_servers  = { count = length(local.model_servers), plan = var.model_instance_type, hourly = length(local.model_servers) * local.model_price.hourly, monthly = length(local.model_servers) * local.model_price.monthly }
    nodebalancers  = { count = length(var.model_regions) + length(var.edge_regions), plan = "nodebalancer", hourly = (length(var.model_regions) + length(var.edge_regions)) * var.price_table.nodebalancer.hourly, monthly = (length(var.model_regions) + length(var.edge_regions)) * var.price_table.nodebalancer.monthly }
    volumes        = { count = length(var.edge_regions), plan = "volume-10gb", hourly = length(var.edge_regions) * var.price_table.volume.hourly, monthly = length(var.edge_regions) * var.price_table.volume.monthly }
    object_storage = { count = 1, plan = "object-storage", hourly = var.price_table.object_storage.hourly, monthly = var.price_table.object_storage.monthly }
    # Unpriced (0) unless feedback_database_price is set: no current price could be confirmed.
    feedback_database = { count = var.feedback_database ? 1 : 0, plan = var.feedback_database ? var.feedback_database_type : "none", hourly = local.feedback_price.hourly, monthly = local.feedback_price.monthly }
  }
  cost_hourly  = sum([for k, l in local.cost_lines : l.hourly])
  cost_monthly = sum([for k, l in local.cost_lines : l.monthly])
}
