# Edges: one small instance per edge region running Caddy (80/443) in front of the edge
# container. Its upstream list is the model regions ordered by distance from its own region.

# A reserved IPv4 per edge region: the address DNS points at survives re-creating the edge.
resource "linode_networking_ip" "edge" {
  for_each = var.edge_reserved_ipv4 ? toset(var.edge_regions) : toset([])

  type     = "ipv4"
  public   = true
  reserved = true
  region   = each.key
}

locals {
  # Egress every instance needs: name resolution, time, package mirrors, the image registry,
  # Object Storage, Let's Encrypt and the GGUF download (all HTTP/HTTPS), and ICMP for path
  # MTU discovery. The firewalls are stateful: replies to allowed inbound traffic pass anyway.
  common_egress = [
    { label = "dns-udp", protocol = "UDP", ports = "53" },
    { label = "dns-tcp", protocol = "TCP", ports = "53" },
    { label = "ntp", protocol = "UDP", ports = "123" },
    { label = "web", protocol = "TCP", ports = "80, 443" },
    { label = "icmp", protocol = "ICMP", ports = null },
  ]
}

resource "linode_firewall" "edge" {
  label = "${var.project}-edge"
  tags  = local.common_tags

  # The public web page and API. Port 80 also answers Let's Encrypt's HTTP-01 challenge.
  inbound {
    label    = "http"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = "80"
    ipv4     = ["0.0.0.0/0"]
    ipv6     = ["::/0"]
  }

  inbound {
    label    = "https"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = "443"
    ipv4     = ["0.0.0.0/0"]
    ipv6     = ["::/0"]
  }

  dynamic "inbound" {
    for_each = length(var.admin_cidrs) > 0 ? [1] : []
    content {
      label    = "ssh-admin"
      action   = "ACCEPT"
      protocol = "TCP"
      ports    = "22"
      ipv4     = length(local.admin_ipv4) > 0 ? local.admin_ipv4 : null
      ipv6     = length(local.admin_ipv6) > 0 ? local.admin_ipv6 : null
    }
  }

  inbound_policy = "DROP"

  # Outbound: Object Storage, the image registry, Ubuntu mirrors, Let's Encrypt (web), DNS,
  # NTP, and the model endpoints on model_port only. Everything else is dropped.
  dynamic "outbound" {
    for_each = local.common_egress
    content {
      label    = outbound.value.label
      action   = "ACCEPT"
      protocol = outbound.value.protocol
      ports    = outbound.value.ports
      ipv4     = ["0.0.0.0/0"]
      ipv6     = ["::/0"]
    }
  }

  outbound {
    label    = "model-endpoints"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = tostring(var.model_port)
    ipv4     = [for m, n in var.model_regions : "${local.model_address[m]}/32"]
  }

  outbound_policy = "DROP"
}

resource "linode_instance" "edge" {
  for_each = toset(var.edge_regions)

  # Any change to the cloud-init document re-creates the instance (the provider cannot update
  # user data in place); the suffix, a digest of that document, shows which version runs.
  # No create_before_destroy: the reserved address can belong to one instance at a time, so
  # the old edge goes first (a few minutes without that region's edge: docs/deployment.md).
  label  = "${var.project}-edge-${each.key}-${nonsensitive(substr(sha256(local.edge_user_data[each.key]), 0, 6))}"
  region = each.key
  type   = var.edge_instance_type
  image  = var.os_image
  # The reserved address becomes the instance's own (primary) address.
  ipv4 = var.edge_reserved_ipv4 ? [linode_networking_ip.edge[each.key].address] : null
  # checkov:skip=CKV_LIN_2: keys are optional by design: SSH is closed at the firewall unless admin_cidrs is set, a precondition then requires a key, and cloud-init turns password SSH off.
  authorized_keys = length(var.ssh_authorized_keys) > 0 ? var.ssh_authorized_keys : null
  # Pinned: on accounts whose default is Linode Interfaces, firewall_id and booted would not
  # apply.
  interface_generation = "legacy_config"
  firewall_id          = linode_firewall.edge.id
  booted               = true
  tags                 = concat(local.common_tags, ["edge"])

  metadata {
    user_data = base64encode(local.edge_user_data[each.key])
  }

  lifecycle {
    precondition {
      condition     = length(var.admin_cidrs) == 0 || length(var.ssh_authorized_keys) > 0
      error_message = "admin_cidrs opens SSH, so ssh_authorized_keys needs at least one key (password login is disabled)."
    }

    precondition {
      condition     = alltrue([for r, h in var.edge_hostnames : contains(var.edge_regions, r)])
      error_message = "Every key of edge_hostnames must be one of edge_regions."
    }

    precondition {
      condition     = var.edge_insecure_http || alltrue([for e in var.edge_regions : contains(keys(var.edge_hostnames), e)])
      error_message = "Every edge region needs a DNS name in edge_hostnames, so it serves HTTPS (point an A record at the edge_addresses output). For a short trial without one, set edge_insecure_http = true."
    }

    precondition {
      condition     = !var.edge_insecure_http || var.edge_api_key == ""
      error_message = "edge_insecure_http sends everything in clear: it cannot be combined with edge_api_key."
    }
  }
}

locals {
  # Each edge's cloud-init document. It holds secrets: never reference it from an output.
  edge_user_data = {
    for e in var.edge_regions :
    e => templatefile("${path.module}/templates/edge.cloud-init.yaml.tftpl", {
      edge_image             = local.edge_image
      caddy_image            = var.caddy_image
      edge_site_address      = local.edge_site_address[e]
      edge_index             = local.index_url
      edge_upstreams         = local.edge_upstreams[e]
      first_token_timeout_s  = local.model_size.first_token_timeout_s
      total_timeout_s        = local.model_size.total_timeout_s
      prometheus_image       = var.prometheus_image
      compose_profiles       = var.monitoring ? "monitoring" : ""
      prometheus_config_b64  = base64encode(file("${path.module}/monitoring/prometheus-edge.yml"))
      alert_rules_b64        = base64encode(file("${path.module}/monitoring/alerts.yml"))
      model_hosts_json       = jsonencode([for m, n in var.model_regions : "${local.model_hostname[m]}:${local.model_address[m]}"])
      model_token            = var.model_token
      edge_api_key           = var.edge_api_key
      edge_cors_origins      = join(",", var.edge_cors_origins)
      edge_reload_interval_s = var.edge_reload_interval_s
      s3_endpoint            = local.s3_endpoint
      s3_region              = local.s3_region
      s3_access_key          = linode_object_storage_key.edge.access_key
      s3_secret_key          = linode_object_storage_key.edge.secret_key
      model_ca_cert_b64      = base64encode(tls_self_signed_cert.model_ca.cert_pem)
      registry_host          = local.registry_host
      registry_username      = var.registry_username
      registry_password_b64  = base64encode(var.registry_password)
    })
  }
}
