locals {
  # Linode core compute regions: where each data center is, for "nearest model region first".
  # Terraform has no trigonometry, so each entry also carries its point on the unit sphere
  # (x = cos(lat)cos(lon), y = cos(lat)sin(lon), z = sin(lat)); the straight-line (chord)
  # distance between two such points orders regions exactly as great-circle distance does.
  # tests/test_terraform.py recomputes x/y/z from lat/lon and checks the ordering.
  regions = {
    "us-east"      = { city = "Newark, NJ", lat = 40.7357, lon = -74.1724, x = 0.20667, y = -0.72900, z = 0.65257 }
    "us-central"   = { city = "Dallas, TX", lat = 32.7767, lon = -96.797, x = -0.09951, y = -0.83488, z = 0.54137 }
    "us-west"      = { city = "Fremont, CA", lat = 37.5485, lon = -121.9886, x = -0.42001, y = -0.67245, z = 0.60943 }
    "us-southeast" = { city = "Atlanta, GA", lat = 33.749, lon = -84.388, x = 0.08131, y = -0.82749, z = 0.55556 }
    "us-ord"       = { city = "Chicago, IL", lat = 41.8781, lon = -87.6298, x = 0.03079, y = -0.74393, z = 0.66755 }
    "us-iad"       = { city = "Washington, DC", lat = 38.9072, lon = -77.0369, x = 0.17456, y = -0.75833, z = 0.62806 }
    "us-sea"       = { city = "Seattle, WA", lat = 47.6062, lon = -122.3321, x = -0.36059, y = -0.56969, z = 0.73853 }
    "us-mia"       = { city = "Miami, FL", lat = 25.7617, lon = -80.1918, x = 0.15342, y = -0.88745, z = 0.43463 }
    "us-lax"       = { city = "Los Angeles, CA", lat = 34.0522, lon = -118.2437, x = -0.39208, y = -0.72989, z = 0.55995 }
    "ca-central"   = { city = "Toronto", lat = 43.6532, lon = -79.3832, x = 0.13330, y = -0.71115, z = 0.69029 }
    "br-gru"       = { city = "Sao Paulo", lat = -23.5505, lon = -46.6333, x = 0.62947, y = -0.66642, z = -0.39956 }
    "eu-west"      = { city = "London", lat = 51.5074, lon = -0.1278, x = 0.62241, y = -0.00139, z = 0.78269 }
    "gb-lon"       = { city = "London 2", lat = 51.5074, lon = -0.1278, x = 0.62241, y = -0.00139, z = 0.78269 }
    "eu-central"   = { city = "Frankfurt", lat = 50.1109, lon = 8.6821, x = 0.63396, y = 0.09681, z = 0.76729 }
    "de-fra-2"     = { city = "Frankfurt 2", lat = 50.1109, lon = 8.6821, x = 0.63396, y = 0.09681, z = 0.76729 }
    "fr-par"       = { city = "Paris", lat = 48.8566, lon = 2.3522, x = 0.65739, y = 0.02700, z = 0.75307 }
    "nl-ams"       = { city = "Amsterdam", lat = 52.3676, lon = 4.9041, x = 0.60836, y = 0.05220, z = 0.79194 }
    "se-sto"       = { city = "Stockholm", lat = 59.3293, lon = 18.0686, x = 0.48495, y = 0.15821, z = 0.86011 }
    "it-mil"       = { city = "Milan", lat = 45.4642, lon = 9.19, x = 0.69235, y = 0.11201, z = 0.71281 }
    "es-mad"       = { city = "Madrid", lat = 40.4168, lon = -3.7038, x = 0.75976, y = -0.04918, z = 0.64834 }
    "ap-west"      = { city = "Mumbai", lat = 19.076, lon = 72.8777, x = 0.27824, y = 0.90320, z = 0.32682 }
    "in-bom-2"     = { city = "Mumbai 2", lat = 19.076, lon = 72.8777, x = 0.27824, y = 0.90320, z = 0.32682 }
    "in-maa"       = { city = "Chennai", lat = 13.0827, lon = 80.2707, x = 0.16461, y = 0.96003, z = 0.22636 }
    "ap-south"     = { city = "Singapore", lat = 1.3521, lon = 103.8198, x = -0.23880, y = 0.97078, z = 0.02360 }
    "sg-sin-2"     = { city = "Singapore 2", lat = 1.3521, lon = 103.8198, x = -0.23880, y = 0.97078, z = 0.02360 }
    "id-cgk"       = { city = "Jakarta", lat = -6.2088, lon = 106.8456, x = -0.28809, y = 0.95148, z = -0.10815 }
    "ap-northeast" = { city = "Tokyo 2", lat = 35.6762, lon = 139.6503, x = -0.61908, y = 0.52594, z = 0.58320 }
    "jp-tyo-3"     = { city = "Tokyo 3", lat = 35.6762, lon = 139.6503, x = -0.61908, y = 0.52594, z = 0.58320 }
    "jp-osa"       = { city = "Osaka", lat = 34.6937, lon = 135.5023, x = -0.58646, y = 0.57627, z = 0.56919 }
    "ap-southeast" = { city = "Sydney", lat = -33.8688, lon = 151.2093, x = -0.72768, y = 0.39989, z = -0.55729 }
    "au-mel"       = { city = "Melbourne", lat = -37.8136, lon = 144.9631, x = -0.64685, y = 0.45355, z = -0.61309 }
  }

  # Names the edges use for model endpoints. ".internal" is reserved for private use (ICANN,
  # 2024), so it never collides with a public name; each edge maps these names to addresses
  # in its containers' /etc/hosts, and the model TLS certificates are issued for them.
  internal_domain = "moviemind.internal"
  model_hostname  = { for r, n in var.model_regions : r => "mm-${r}.${local.internal_domain}" }
  model_url       = { for r, n in var.model_regions : r => "https://${local.model_hostname[r]}:${var.model_port}" }

  # One entry per model server: "us-ord-1", "us-ord-2", ...
  model_servers = merge([
    for r, n in var.model_regions : {
      for i in range(n) : "${r}-${i + 1}" => { region = r, ordinal = i + 1 }
    }
  ]...)
  nodebalancer_regions = toset([for r, n in var.model_regions : r if n > 1 || var.model_nodebalancer_always])

  # What an edge connects to for each model region: the NodeBalancer when there is one,
  # otherwise the single server.
  model_address = {
    for r, n in var.model_regions : r => (contains(local.nodebalancer_regions, r) ? linode_nodebalancer.model[r].ipv4 : linode_instance.model["${r}-1"].ip_address)
  }

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

  # Caddy site address: a DNS name turns on automatic HTTPS, ":80" serves plain HTTP.
  edge_site_address = { for e in var.edge_regions : e => lookup(var.edge_hostnames, e, ":80") }
  edge_url = {
    for e in var.edge_regions : e => (contains(keys(var.edge_hostnames), e) ? "https://${var.edge_hostnames[e]}" : "http://${linode_instance.edge[e].ip_address}")
  }

  edge_image     = "${var.image_registry}/edge:${var.edge_image_tag}"
  model_image    = "${var.image_registry}/model-server:${var.model_image_tag}"
  registry_host  = split("/", var.image_registry)[0]
  index_url      = "s3://${var.index_bucket}/${var.index_prefix}"
  admin_ipv4     = [for c in var.admin_cidrs : c if !strcontains(c, ":")]
  admin_ipv6     = [for c in var.admin_cidrs : c if strcontains(c, ":")]
  edge_ipv4_cidr = [for e in var.edge_regions : "${linode_instance.edge[e].ip_address}/32"]
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
    nodebalancers  = { count = length(local.nodebalancer_regions), plan = "nodebalancer", hourly = length(local.nodebalancer_regions) * var.price_table.nodebalancer.hourly, monthly = length(local.nodebalancer_regions) * var.price_table.nodebalancer.monthly }
    object_storage = { count = 1, plan = "object-storage", hourly = var.price_table.object_storage.hourly, monthly = var.price_table.object_storage.monthly }
  }
  cost_hourly  = sum([for k, l in local.cost_lines : l.hourly])
  cost_monthly = sum([for k, l in local.cost_lines : l.monthly])
}
