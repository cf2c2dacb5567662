# Model servers: in each model region, N instances running Caddy (TLS on model_port) in front
# of the model server container (8001, never published on the host). A region with more than
# one server (or every region, with model_nodebalancer_always) gets a NodeBalancer that passes
# TLS through to them.

resource "linode_instance" "model" {
  for_each = local.model_servers

  # As for edges: a digest of the cloud-init document keeps labels unique across a replacement,
  # so new servers boot (and join their NodeBalancer) before the old ones go.
  label  = "${var.project}-model-${each.key}-${nonsensitive(substr(sha256(local.model_user_data[each.key]), 0, 6))}"
  region = each.value.region
  type   = var.model_instance_type
  image  = var.os_image
  # checkov:skip=CKV_LIN_2: keys are optional by design: SSH is closed at the firewall unless admin_cidrs is set, a precondition then requires a key, and cloud-init turns password SSH off.
  authorized_keys = length(var.ssh_authorized_keys) > 0 ? var.ssh_authorized_keys : null
  # NodeBalancers reach their backends on the region's private network.
  private_ip = true
  booted     = true
  tags       = concat(local.common_tags, ["model-server"])

  metadata {
    user_data = base64encode(local.model_user_data[each.key])
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = length(var.admin_cidrs) == 0 || length(var.ssh_authorized_keys) > 0
      error_message = "admin_cidrs opens SSH, so ssh_authorized_keys needs at least one key (password login is disabled)."
    }

    precondition {
      condition     = (var.model_gguf_url == "") == (var.model_gguf_sha256 == "")
      error_message = "Set model_gguf_url and model_gguf_sha256 together (a fetched GGUF is always verified), or neither to serve the embedded SmolLM2-135M."
    }
  }
}

# The firewall is attached after the instances exist (its `linodes` list) because its rules
# name the edges, whose cloud-init in turn names the model servers. The model server only
# listens once cloud-init has installed Docker and pulled the image, minutes later, and it
# always requires the bearer token.
resource "linode_firewall" "model" {
  label   = "${var.project}-model"
  tags    = local.common_tags
  linodes = [for k, s in local.model_servers : linode_instance.model[k].id]

  # The model port, from the edges' addresses only.
  inbound {
    label    = "model-from-edges"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = tostring(var.model_port)
    ipv4     = local.edge_ipv4_cidr
    ipv6     = local.edge_ipv6_cidr
  }

  # NodeBalancers connect to their backends from 192.168.255.0/24 on the private network.
  dynamic "inbound" {
    for_each = length(local.nodebalancer_regions) > 0 ? [1] : []
    content {
      label    = "model-from-nodebalancer"
      action   = "ACCEPT"
      protocol = "TCP"
      ports    = tostring(var.model_port)
      ipv4     = ["192.168.255.0/24"]
    }
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

  outbound_policy = "DROP"
}

resource "linode_nodebalancer" "model" {
  for_each = local.nodebalancer_regions

  label  = "${var.project}-${each.key}"
  region = each.key
  tags   = local.common_tags
}

resource "linode_nodebalancer_config" "model" {
  for_each = local.nodebalancer_regions

  nodebalancer_id = linode_nodebalancer.model[each.key].id
  port            = var.model_port
  # TCP: TLS passes through to the servers, which hold the certificate; the NodeBalancer
  # never sees the token or the prompts.
  protocol = "tcp"
  # Generations are long and uneven: send each new connection to the least busy server.
  algorithm      = "leastconn"
  stickiness     = "none"
  check          = "connection"
  check_interval = 10
  check_timeout  = 5
  check_attempts = 3
  check_passive  = true
}

resource "linode_nodebalancer_node" "model" {
  for_each = { for k, s in local.model_servers : k => s if contains(local.nodebalancer_regions, s.region) }

  nodebalancer_id = linode_nodebalancer.model[each.value.region].id
  config_id       = linode_nodebalancer_config.model[each.value.region].id
  label           = "${var.project}-model-${each.key}"
  address         = "${linode_instance.model[each.key].private_ip_address}:${var.model_port}"
  mode            = "accept"
  weight          = 100

  lifecycle {
    # Re-create the node when its instance is re-created (linode/terraform-provider-linode#1224).
    replace_triggered_by = [linode_instance.model[each.key].id]
  }
}

# NodeBalancers are public; this firewall limits them to the edges, like the servers' own.
resource "linode_firewall" "model_nodebalancer" {
  count = length(local.nodebalancer_regions) > 0 ? 1 : 0

  label         = "${var.project}-model-nb"
  tags          = local.common_tags
  nodebalancers = [for r in local.nodebalancer_regions : linode_nodebalancer.model[r].id]

  inbound {
    label    = "model-from-edges"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = tostring(var.model_port)
    ipv4     = local.edge_ipv4_cidr
    ipv6     = local.edge_ipv6_cidr
  }

  inbound_policy = "DROP"

  # checkov:skip=CKV_LIN_6: a NodeBalancer's firewall filters only traffic arriving at its
  # public address; its connections to backends are not subject to outbound rules, so an
  # outbound DROP policy would protect nothing.
  outbound_policy = "ACCEPT"
}

locals {
  # Each model server's cloud-init document. It holds secrets: never reference it from an output.
  model_user_data = {
    for k, s in local.model_servers :
    k => templatefile("${path.module}/templates/model.cloud-init.yaml.tftpl", {
      model_image           = local.model_image
      caddy_image           = var.caddy_image
      model_port            = var.model_port
      model_url             = var.model_gguf_url
      model_sha256          = var.model_gguf_sha256
      model_engine          = var.model_engine
      model_threads         = var.model_threads
      model_context         = var.model_context
      model_slots           = var.model_slots
      model_queue           = var.model_queue
      model_token           = var.model_token
      tls_cert_b64          = base64encode("${tls_locally_signed_cert.model[s.region].cert_pem}${tls_self_signed_cert.model_ca.cert_pem}")
      tls_key_b64           = base64encode(tls_private_key.model[s.region].private_key_pem)
      registry_host         = local.registry_host
      registry_username     = var.registry_username
      registry_password_b64 = base64encode(var.registry_password)
    })
  }
}
