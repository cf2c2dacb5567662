terraform {
  # check blocks and the functions used here need 1.5; nothing newer is required.
  required_version = ">= 1.5.0"

  required_providers {
    # Exact pins: a provider upgrade is a reviewed change, not a side effect of `init`.
    linode = {
      source  = "linode/linode"
      version = "3.13.0"
    }
    # A private CA for the edge -> model server TLS hop; keys never leave the state.
    tls = {
      source  = "hashicorp/tls"
      version = "4.2.1"
    }
  }
}

# The API token is read from the LINODE_TOKEN environment variable, so it is never written to
# a tfvars file or to the state. Scopes: docs/deployment.md.
provider "linode" {}
