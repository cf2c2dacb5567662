# A private CA for the hop from edges to model servers, which crosses the public internet
# between regions: the bearer token and the prompts must not travel in clear text.
# The CA key exists only in the Terraform state (keep the state private: docs/deployment.md);
# instances receive the CA certificate (edges) or their region's leaf key and certificate
# (model servers), never the CA key. Certificates name the model hostnames, not addresses,
# so they can be issued before any instance exists.
#
# RSA throughout: the NodeBalancers terminate this TLS, and NodeBalancers accept RSA
# certificates only ("Certificates using the ECDSA algorithm are not supported", Linode guide
# "TLS/SSL Termination on NodeBalancers"). The whole chain is RSA so no part of it is refused.

resource "tls_private_key" "model_ca" {
  algorithm = "RSA"
  rsa_bits  = 3072
}

resource "tls_self_signed_cert" "model_ca" {
  private_key_pem       = tls_private_key.model_ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 87600 # 10 years: rotating it means re-creating every instance
  allowed_uses          = ["cert_signing", "crl_signing", "digital_signature"]

  subject {
    common_name  = "${var.project} model CA"
    organization = var.project
  }
}

# One key and certificate per model region, shared by the servers behind its NodeBalancer
# (which passes TLS through to them).
resource "tls_private_key" "model" {
  for_each  = var.model_regions
  algorithm = "RSA"
  rsa_bits  = 2048
}

resource "tls_cert_request" "model" {
  for_each        = var.model_regions
  private_key_pem = tls_private_key.model[each.key].private_key_pem
  dns_names       = [local.model_hostname[each.key]]

  subject {
    common_name  = local.model_hostname[each.key]
    organization = var.project
  }
}

resource "tls_locally_signed_cert" "model" {
  for_each              = var.model_regions
  cert_request_pem      = tls_cert_request.model[each.key].cert_request_pem
  ca_private_key_pem    = tls_private_key.model_ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.model_ca.cert_pem
  validity_period_hours = 26280 # 3 years
  early_renewal_hours   = 720   # an apply in the last 30 days renews (and re-creates the servers)
  allowed_uses          = ["digital_signature", "key_encipherment", "server_auth"]
}
