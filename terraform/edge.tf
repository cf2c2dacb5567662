# Edges: in each edge region a VPC, one small instance running Caddy in front of the edge
# container, and a NodeBalancer in front of it. The NodeBalancer's IPv4 and IPv6 addresses are
# what DNS points at: they never change. It passes TCP through on 80 and 443 and prepends a
# PROXY protocol v2 header, so Caddy (which holds the Let's Encrypt certificate) sees every
# client's own IPv4 or IPv6 address. The upstream list is the model regions ordered by
# distance from the edge's region.
#
# Replacing an edge never takes its region down: the new instance is created first
# (create_before_destroy, an address of its own), Caddy's certificate data moves to it on the
# region's Block Storage volume, terraform_data.edge_ready waits until the NodeBalancer sees
# it ready, only then does it receive client traffic, and only then does the old one go.
# edge_hold keeps chosen regions on the release they run (one region at a time).

resource "linode_vpc" "edge" {
  for_each = toset(var.edge_regions)

  label       = "${var.project}-e-${each.key}"
  region      = each.key
  description = "${var.project} edge and its NodeBalancer"
}

resource "linode_vpc_subnet" "edge" {
  for_each = toset(var.edge_regions)

  vpc_id = linode_vpc.edge[each.key].id
  label  = "edge"
  ipv4   = local.edge_vpc_subnet
}

resource "linode_nodebalancer" "edge" {
  for_each = toset(var.edge_regions)

  label  = "${var.project}-e-${each.key}"
  region = each.key
  tags   = local.common_tags
  vpcs = [{
    subnet_id  = linode_vpc_subnet.edge[each.key].id
    ipv4_range = local.edge_vpc_nb_range
  }]
}

locals {
  # The edge NodeBalancer's ports. 80 and 443 carry clients (TCP, PROXY protocol v2: Caddy
  # terminates TLS with its Let's Encrypt certificate). 8080 is the readiness probe only: plain
  # HTTP /readyz through Caddy to the edge; the NodeBalancer's firewall admits no client to it.
  edge_nb_ports = {
    "http"  = { port = 80, check = "connection", proxy_protocol = "v2" }
    "https" = { port = 443, check = "connection", proxy_protocol = "v2" }
    "ready" = { port = 8080, check = "http", proxy_protocol = "none" }
  }
  edge_nb_configs = merge([
    for e in var.edge_regions : { for name, p in local.edge_nb_ports : "${e}-${name}" => merge(p, { region = e, name = name }) }
  ]...)
}

resource "linode_nodebalancer_config" "edge" {
  for_each = local.edge_nb_configs

  nodebalancer_id = linode_nodebalancer.edge[each.value.region].id
  port            = each.value.port
  protocol        = "tcp"
  proxy_protocol  = each.value.proxy_protocol
  algorithm       = "leastconn"
  stickiness      = "none"
  check           = each.value.check
  check_path      = each.value.check == "http" ? "/readyz" : null
  check_interval  = 10
  check_timeout   = 5
  check_attempts  = 3
  check_passive   = true
}

# The readiness probe's node: created with the instance, before anything else points at it.
resource "linode_nodebalancer_node" "edge_ready" {
  for_each = toset(var.edge_regions)

  nodebalancer_id = linode_nodebalancer.edge[each.key].id
  config_id       = linode_nodebalancer_config.edge["${each.key}-ready"].id
  label           = "${each.key}-ready-${substr(terraform_data.edge_release[each.key].output, 0, 6)}"
  address         = "${linode_instance.edge[each.key].interface[1].ipv4[0].vpc}:8080"
  subnet_id       = linode_vpc_subnet.edge[each.key].id
  mode            = "accept"

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [linode_instance.edge[each.key].id]
  }
}

# The rollout gate: waits until the NodeBalancer reports the new edge's readiness node UP,
# i.e. its /readyz answers 200 through Caddy (index loaded, certificate data mounted).
resource "terraform_data" "edge_ready" {
  for_each = var.model_ready_wait ? toset(var.edge_regions) : toset([])

  triggers_replace = [linode_nodebalancer_node.edge_ready[each.key].id]

  provisioner "local-exec" {
    command = "${path.module}/scripts/wait-node-up.sh"
    environment = {
      NB_ID     = linode_nodebalancer.edge[each.key].id
      CONFIG_ID = linode_nodebalancer_config.edge["${each.key}-ready"].id
      NODE_ID   = linode_nodebalancer_node.edge_ready[each.key].id
      TIMEOUT_S = var.model_ready_timeout_s
      LABEL     = "edge ${each.key}"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Client traffic reaches a new edge only after the gate: its 80/443 nodes depend on it.
resource "linode_nodebalancer_node" "edge" {
  for_each = merge([
    for e in var.edge_regions : { for name in ["http", "https"] : "${e}-${name}" => { region = e, port = local.edge_nb_ports[name].port } }
  ]...)

  nodebalancer_id = linode_nodebalancer.edge[each.value.region].id
  config_id       = linode_nodebalancer_config.edge[each.key].id
  label           = "${each.key}-${substr(terraform_data.edge_release[each.value.region].output, 0, 6)}"
  address         = "${linode_instance.edge[each.value.region].interface[1].ipv4[0].vpc}:${each.value.port}"
  subnet_id       = linode_vpc_subnet.edge[each.value.region].id
  mode            = "accept"

  depends_on = [terraform_data.edge_ready]

  lifecycle {
    create_before_destroy = true
    replace_triggered_by  = [linode_instance.edge[each.value.region].id]
  }
}

# Caddy's data (Let's Encrypt account, certificates, keys) lives on this volume, not on the
# instance: when an edge is replaced the volume moves to the new instance (its linode_id
# changes in place: detached from the old, attached to the new), so the new edge serves the
# certificate it already has instead of asking Let's Encrypt again (5 duplicates per week).
resource "linode_volume" "edge_caddy" {
  for_each = toset(var.edge_regions)

  label     = "${var.project}-caddy-${each.key}"
  region    = each.key
  size      = 10
  linode_id = linode_instance.edge[each.key].id
  tags      = local.common_tags
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

  # Clients arrive through the region's NodeBalancer only (its VPC range); port 80 also
  # answers Let's Encrypt's HTTP-01 challenge, 8080 the NodeBalancer's readiness probe.
  inbound {
    label    = "web-from-nodebalancer-vpc"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = "80, 443, 8080"
    ipv4     = [local.edge_vpc_nb_range]
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

  # The managed feedback database (feedback_database = true) on its port only. Its address is
  # a name the API gives out, so the rule cannot name it; the database's own allow_list admits
  # only the edges (feedback.tf).
  dynamic "outbound" {
    for_each = var.feedback_database ? [1] : []
    content {
      label    = "feedback-database"
      action   = "ACCEPT"
      protocol = "TCP"
      ports    = tostring(linode_database_postgresql_v2.feedback[0].port)
      ipv4     = ["0.0.0.0/0"]
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

  # The suffix is the release id (a digest of the cloud-init document): which version runs.
  label  = "${var.project}-edge-${each.key}-${terraform_data.edge_release[each.key].output}"
  region = each.key
  type   = var.edge_instance_type
  image  = var.os_image
  # checkov:skip=CKV_LIN_2: keys are optional by design: SSH is closed at the firewall unless admin_cidrs is set, a precondition then requires a key, and cloud-init turns password SSH off.
  authorized_keys = length(var.ssh_authorized_keys) > 0 ? var.ssh_authorized_keys : null
  # Pinned: on accounts whose default is Linode Interfaces, firewall_id and booted would not
  # apply.
  interface_generation = "legacy_config"
  firewall_id          = linode_firewall.edge.id
  booted               = true
  tags                 = concat(local.common_tags, ["edge"])

  # Public: egress (images, Object Storage, Let's Encrypt, the model NodeBalancers). VPC: the
  # NodeBalancer's traffic, at an address the API assigns (no fixed address: a replacement
  # could not take one its predecessor still holds).
  interface {
    purpose = "public"
    primary = true
  }

  interface {
    purpose   = "vpc"
    subnet_id = linode_vpc_subnet.edge[each.key].id
  }

  metadata {
    user_data = base64encode(local.edge_user_data[each.key])
  }

  # The NodeBalancer claims its VPC range before any edge takes an address.
  depends_on = [linode_nodebalancer.edge]

  lifecycle {
    create_before_destroy = true
    # Replaced when the release id changes, and only then (edge_hold holds it back).
    ignore_changes       = [metadata]
    replace_triggered_by = [terraform_data.edge_release[each.key]]

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
      error_message = "Every edge region needs a DNS name in edge_hostnames, so it serves HTTPS (point A and AAAA records at the edge_addresses output). For a short trial without one, set edge_insecure_http = true."
    }

    precondition {
      condition     = !var.edge_insecure_http || var.edge_api_key == ""
      error_message = "edge_insecure_http sends everything in clear: it cannot be combined with edge_api_key."
    }

    precondition {
      condition     = alltrue([for r, id in var.edge_hold : contains(var.edge_regions, r)])
      error_message = "edge_hold must name edge regions (its values come from `terraform output edge_release_ids`)."
    }
  }
}

# The release an edge runs: its cloud-init digest, or for a region in edge_hold the id it ran
# when held. The edge is replaced when this changes, and only then.
resource "terraform_data" "edge_release" {
  for_each = toset(var.edge_regions)

  input = lookup(var.edge_hold, each.key, local.edge_release_id[each.key])
}

# The edge NodeBalancers face the internet on 80 and 443 only (v4 and v6); 8080, their
# readiness probe port, admits nobody.
resource "linode_firewall" "edge_nodebalancer" {
  label         = "${var.project}-edge-nb"
  tags          = local.common_tags
  nodebalancers = [for e in var.edge_regions : linode_nodebalancer.edge[e].id]

  inbound {
    label    = "web"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = "80, 443"
    ipv4     = ["0.0.0.0/0"]
    ipv6     = ["::/0"]
  }

  inbound_policy = "DROP"

  # checkov:skip=CKV_LIN_6: a NodeBalancer's firewall filters only traffic arriving at its
  # public address; its connections to backends are not subject to outbound rules.
  outbound_policy = "ACCEPT"
}

locals {
  # Each edge's cloud-init document. It holds secrets: never reference it from an output.
  edge_user_data = {
    for e in var.edge_regions :
    e => templatefile("${path.module}/templates/edge.cloud-init.yaml.tftpl", {
      edge_image              = local.edge_image
      caddy_image             = var.caddy_image
      edge_site_address       = local.edge_site_address[e]
      edge_tls_issuer         = var.edge_tls_issuer
      edge_nb_range           = local.edge_vpc_nb_range
      caddy_volume_label      = "${var.project}-caddy-${e}"
      edge_index              = local.index_url
      edge_upstreams          = local.edge_upstreams[e]
      first_token_timeout_s   = local.first_token_timeout_s
      total_timeout_s         = local.total_timeout_s
      prometheus_image        = var.prometheus_image
      alertmanager_image      = var.alertmanager_image
      compose_profiles        = var.monitoring ? "monitoring" : ""
      prometheus_config_b64   = base64encode(file("${path.module}/monitoring/prometheus-edge.yml"))
      alert_rules_b64         = base64encode(file("${path.module}/monitoring/alerts.yml"))
      alertmanager_config_b64 = base64encode(file("${path.module}/monitoring/alertmanager.yml"))
      alert_webhook_url_b64   = base64encode(var.alert_webhook_url)
      model_hosts_json        = jsonencode([for m, n in var.model_regions : "${local.model_hostname[m]}:${local.model_address[m]}"])
      model_token             = var.model_token
      edge_api_key            = var.edge_api_key
      edge_cors_origins       = join(",", var.edge_cors_origins)
      edge_reload_interval_s  = var.edge_reload_interval_s
      edge_rate_limit         = var.edge_rate_limit_per_minute
      s3_endpoint             = local.s3_endpoint
      s3_region               = local.s3_region
      s3_access_key           = linode_object_storage_key.edge.access_key
      s3_secret_key           = linode_object_storage_key.edge.secret_key
      model_ca_cert_b64       = base64encode(tls_self_signed_cert.model_ca.cert_pem)
      registry_host           = local.registry_host
      registry_username       = var.registry_username
      registry_password_b64   = base64encode(var.registry_password)
      feedback_url            = local.feedback_url
      feedback_db_ca_b64      = local.feedback_db_ca_b64
    })
  }
  # A digest reveals nothing of the secrets in the document (nonsensitive: it labels instances).
  edge_release_id = { for e, doc in local.edge_user_data : e => nonsensitive(substr(sha256(doc), 0, 12)) }
}
