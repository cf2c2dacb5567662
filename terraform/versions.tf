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
#
# The v4 API, pinned. VPC-attached NodeBalancers are part of v4 since the API changelog of
# 2025-06-30 (https://techdocs.akamai.com/linode-api/changelog/jun-30-2025-nodebalancers-now-supports-backend-linodes-in-vpcs:
# subnet_id and ipv4_range on POST /nodebalancers); the provider's docs at 3.13.0 still say the
# feature "may require" v4beta, a note older than that. v4beta would move every resource to beta
# endpoints. If an account still lacks the feature, apply fails at the NodeBalancer with the
# API's message: ask support, or try LINODE_API_VERSION=v4beta with api_version removed.
provider "linode" {
  api_version = "v4"
}
