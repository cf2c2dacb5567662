# Model servers: in each model region a VPC, N instances running the model server container
# (port 8001, published on the VPC address only) and a NodeBalancer in the same VPC. The
# NodeBalancer is the region's one stable address: it terminates TLS on model_port with the
# region's certificate, sends each request to a server whose /readyz answers 200, and never
# changes address when the servers behind it are replaced.
#
# Replacing a server (new image, model, token, settings) is safe: the new server is created
# first (create_before_destroy) at an address the API assigns (never its predecessor's), joins
# the NodeBalancer, and terraform_data.model_ready waits until the NodeBalancer reports it UP
# before the old one is destroyed. model_hold keeps chosen regions on the release they run,
# so a rollout goes one region at a time (docs/deployment.md).

resource "linode_vpc" "model" {
  for_each = var.model_regions

  label       = "${var.project}-${each.key}"
  region      = each.key
  description = "${var.project} model servers and their NodeBalancer"
}

resource "linode_vpc_subnet" "model" {
  for_each = var.model_regions

  vpc_id = linode_vpc.model[each.key].id
  label  = "model"
  ipv4   = local.model_vpc_subnet
}

resource "linode_instance" "model" {
  for_each = local.model_servers

  # The release id (a digest of the cloud-init document) keeps labels unique across a
  # replacement and shows which version runs.
  label  = "${var.project}-model-${each.key}-${terraform_data.model_release[each.key].output}"
  region = each.value.region
  type   = var.model_instance_type
  image  = var.os_image
  # checkov:skip=CKV_LIN_2: keys are optional by design: SSH is closed at the firewall unless admin_cidrs is set, a precondition then requires a key, and cloud-init turns password SSH off.
  authorized_keys = length(var.ssh_authorized_keys) > 0 ? var.ssh_authorized_keys : null
  # Pinned: on accounts whose default is Linode Interfaces, the interface blocks, firewall_id
  # and booted below would not apply.
  interface_generation = "legacy_config"
  # The firewall is attached at creation: the server never boots unprotected.
  firewall_id = linode_firewall.model.id
  booted      = true
  tags        = concat(local.common_tags, ["model-server"])

  # Public: image pulls and Object Storage (egress only: the firewall admits nothing but SSH
  # from admin_cidrs). VPC: the NodeBalancer's traffic, at an address the API assigns.
  interface {
    purpose = "public"
    primary = true
  }

  interface {
    purpose   = "vpc"
    subnet_id = linode_vpc_subnet.model[each.value.region].id
  }

  metadata {
    user_data = base64encode(local.model_user_data[each.value.region])
  }

  # The NodeBalancer claims its VPC range first, so an assigned server address never falls
  # inside it.
  depends_on = [linode_nodebalancer.model]

  lifecycle {
    create_before_destroy = true
    # The cloud-init document changes with every setting; a server is replaced only when its
    # release id changes, which model_hold can hold back (terraform_data.model_release).
    ignore_changes       = [metadata]
    replace_triggered_by = [terraform_data.model_release[each.key]]

    precondition {
      condition     = length(var.admin_cidrs) == 0 || length(var.ssh_authorized_keys) > 0
      error_message = "admin_cidrs opens SSH, so ssh_authorized_keys needs at least one key (password login is disabled)."
    }
  }
}

# The release a server runs: the digest of its region's cloud-init document, or, for a region
# in model_hold, the id it ran when it was held (copied from `terraform output
# model_release_ids`). Servers are replaced when this changes and only then, so a held region
# keeps running whatever else (image, model, threads, slots, monitoring, alert rules) changes.
resource "terraform_data" "model_release" {
  for_each = local.model_servers

  input = lookup(var.model_hold, each.value.region, local.model_release_id[each.value.region])
}

# Every model setting that relates two inputs, checked before anything is created.
resource "terraform_data" "model_settings" {
  input = local.model_release_current

  lifecycle {
    precondition {
      condition     = local.model_release_current.gguf_url == "" || local.model_release_current.gguf_sha256 != ""
      error_message = "model_preset ${var.model_preset} fetches ${local.model_release_current.gguf_url}: set model_gguf_sha256 to that file's sha256 (docs/deployment.md, \"The model's checksum\"). The server refuses a file it cannot verify."
    }

    precondition {
      condition     = var.model_preset != "custom" || var.model_gguf_url != ""
      error_message = "model_preset = custom needs model_gguf_url (and model_gguf_sha256)."
    }

    precondition {
      condition     = lookup(local.plan_memory_mb, var.model_instance_type, 0) >= local.model_memory_mb
      error_message = "model_instance_type ${var.model_instance_type} has ${lookup(local.plan_memory_mb, var.model_instance_type, 0)} MB of RAM; model_preset ${var.model_preset} with model_slots = ${var.model_slots} at a ${local.model_context}-token context needs ${local.model_memory_mb} MB (file + runtime + a KV cache per slot): fewer slots, a shorter model_context or a bigger plan."
    }

    precondition {
      condition     = alltrue([for r, id in var.model_hold : contains(keys(var.model_regions), r)])
      error_message = "model_hold must name model regions (its values come from `terraform output model_release_ids`)."
    }

    precondition {
      condition     = local.first_token_timeout_s <= local.max_first_token_timeout_s
      error_message = "model_queue = ${var.model_queue} with model_slots = ${var.model_slots}: a queued request would wait ${local.first_token_timeout_s} s for its first token (about ${local.model_answer_s} s per answer, docs/deployment.md \"Timeouts and queue sizes\"). Lower model_queue; add servers for capacity."
    }
  }
}

# Attached by each server's firewall_id at creation. The model server's port is published on
# the VPC address only; the rule below admits the NodeBalancer's VPC range (this account's VPC:
# no other customer's NodeBalancer shares it).
resource "linode_firewall" "model" {
  label = "${var.project}-model"
  tags  = local.common_tags

  inbound {
    label    = "model-from-nodebalancer-vpc"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = tostring(local.model_server_port)
    ipv4     = [local.model_vpc_nb_range]
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
  for_each = var.model_regions

  label  = "${var.project}-${each.key}"
  region = each.key
  tags   = local.common_tags
  # The NodeBalancer reaches its backends inside the region's VPC, from this range.
  vpcs = [{
    subnet_id  = linode_vpc_subnet.model[each.key].id
    ipv4_range = local.model_vpc_nb_range
  }]
}

resource "linode_nodebalancer_config" "model" {
  for_each = var.model_regions

  nodebalancer_id = linode_nodebalancer.model[each.key].id
  port            = var.model_port
  # HTTPS: the NodeBalancer holds the region's certificate (the name the edges call, signed by
  # the private CA) and speaks HTTP to the servers inside the VPC. That lets it check
  # readiness over HTTP: a server loading or downloading its model answers /readyz with 503
  # and gets no traffic.
  protocol     = "https"
  ssl_cert     = "${tls_locally_signed_cert.model[each.key].cert_pem}${tls_self_signed_cert.model_ca.cert_pem}"
  ssl_key      = tls_private_key.model[each.key].private_key_pem
  cipher_suite = "recommended"
  # Generations are long and uneven: send each new connection to the least busy server.
  algorithm      = "leastconn"
  stickiness     = "none"
  check          = "http"
  check_path     = "/readyz"
  check_interval = 10
  check_timeout  = 5
  check_attempts = 3
  check_passive  = true
}

resource "linode_nodebalancer_node" "model" {
  for_each = local.model_servers

  nodebalancer_id = linode_nodebalancer.model[each.value.region].id
  config_id       = linode_nodebalancer_config.model[each.value.region].id
  # At most 32 characters (the API's limit): "<region>-<n>-<digest>" is at most 22.
  label     = "${each.key}-${substr(terraform_data.model_release[each.key].output, 0, 6)}"
  address   = "${linode_instance.model[each.key].interface[1].ipv4[0].vpc}:${local.model_server_port}"
  subnet_id = linode_vpc_subnet.model[each.value.region].id
  mode      = "accept"
  weight    = 100

  lifecycle {
    create_before_destroy = true
    # Re-create the node when its instance is re-created (linode/terraform-provider-linode#1224).
    replace_triggered_by = [linode_instance.model[each.key].id]
  }
}

# The rollout gate: created after the new server's node, before the replaced server and node
# are destroyed (create_before_destroy), it waits until the NodeBalancer reports the node UP.
resource "terraform_data" "model_ready" {
  for_each = var.model_ready_wait ? local.model_servers : {}

  triggers_replace = [linode_nodebalancer_node.model[each.key].id]

  provisioner "local-exec" {
    command = "${path.module}/scripts/wait-node-up.sh"
    environment = {
      NB_ID     = linode_nodebalancer.model[each.value.region].id
      CONFIG_ID = linode_nodebalancer_config.model[each.value.region].id
      NODE_ID   = linode_nodebalancer_node.model[each.key].id
      TIMEOUT_S = var.model_ready_timeout_s
      LABEL     = "model server ${each.key}"
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# NodeBalancers are public; this firewall limits them to the edges.
resource "linode_firewall" "model_nodebalancer" {
  label         = "${var.project}-model-nb"
  tags          = local.common_tags
  nodebalancers = [for r, n in var.model_regions : linode_nodebalancer.model[r].id]

  inbound {
    label    = "model-from-edges"
    action   = "ACCEPT"
    protocol = "TCP"
    ports    = tostring(var.model_port)
    ipv4     = local.edge_ipv4_cidr
  }

  inbound_policy = "DROP"

  # checkov:skip=CKV_LIN_6: a NodeBalancer's firewall filters only traffic arriving at its
  # public address; its connections to backends are not subject to outbound rules, so an
  # outbound DROP policy would protect nothing.
  outbound_policy = "ACCEPT"
}

locals {
  # Each model region's cloud-init document (all servers of a region run the same). It holds
  # secrets: never reference it from an output.
  model_from_s3 = startswith(local.model_release_current.gguf_url, "s3://")
  model_user_data = {
    for r, n in var.model_regions :
    r => templatefile("${path.module}/templates/model.cloud-init.yaml.tftpl", {
      model_image        = "${var.image_registry}/model-server:${var.model_image_tag}@${var.model_image_digest}"
      prometheus_image   = var.prometheus_image
      alertmanager_image = var.alertmanager_image
      compose_profiles   = var.monitoring ? "monitoring" : ""
      model_url          = local.model_release_current.gguf_url
      model_sha256       = local.model_release_current.gguf_sha256
      model_engine       = local.model_release_current.engine
      model_threads      = var.model_threads
      model_context      = local.model_context
      model_slots        = var.model_slots
      model_queue        = var.model_queue
      model_deadline_s   = local.model_deadline_s
      model_token        = var.model_token
      # The bucket's settings only with an s3:// model URL: the server refuses them otherwise
      # (the demo preset downloads nothing; an https URL needs no key).
      model_s3_endpoint       = local.model_from_s3 ? local.s3_endpoint : ""
      model_s3_region         = local.model_from_s3 ? local.s3_region : ""
      model_s3_access_key     = local.model_from_s3 ? linode_object_storage_key.model.access_key : ""
      model_s3_secret_key     = local.model_from_s3 ? linode_object_storage_key.model.secret_key : ""
      prometheus_config_b64   = base64encode(file("${path.module}/monitoring/prometheus-model.yml"))
      alert_rules_b64         = base64encode(file("${path.module}/monitoring/alerts.yml"))
      alertmanager_config_b64 = base64encode(file("${path.module}/monitoring/alertmanager.yml"))
      alert_webhook_url_b64   = base64encode(var.alert_webhook_url)
      registry_host           = local.registry_host
      registry_username       = var.registry_username
      registry_password_b64   = base64encode(var.registry_password)
    })
  }
  # A short digest of each region's document: the release its servers run.
  # A digest reveals nothing of the secrets in the document (nonsensitive: it labels instances).
  model_release_id = { for r, doc in local.model_user_data : r => nonsensitive(substr(sha256(doc), 0, 12)) }
}
