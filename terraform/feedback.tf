# The feedback store (POST /v1/feedback votes), optional. feedback_database = true: one Linode
# managed PostgreSQL for every edge, TLS required and verified, reachable only from the edges'
# public IPv4 addresses (its allow_list). false: each edge keeps its votes in SQLite on its own
# Docker volume (docs/deployment.md, "Feedback votes").
#
# The allow list is its own resource because the edges' user-data carries the database's URL:
# listing the edges on the database itself would make each depend on the other.

resource "linode_database_postgresql_v2" "feedback" {
  count = var.feedback_database ? 1 : 0

  label     = "${var.project}-feedback"
  engine_id = var.feedback_database_engine
  region    = local.feedback_database_region
  type      = var.feedback_database_type
  # allow_list is left to linode_database_access_controls.feedback (the provider's way of
  # managing it separately); the API's default, an empty list, admits nobody meanwhile.

  # Patches at a quiet hour; a single node is down for their duration (the edges spool).
  updates = {
    frequency   = "weekly"
    day_of_week = 7
    hour_of_day = 4
    duration    = 1
  }

  # The votes are the one state of this deployment that cannot be rebuilt: turning
  # feedback_database off destroys the database (docs/deployment.md says how to keep them).
  lifecycle {
    precondition {
      condition     = length(var.project) + length("-feedback") <= 32
      error_message = "The database label (project + \"-feedback\") must be at most 32 characters."
    }
  }
}

resource "linode_database_access_controls" "feedback" {
  count = var.feedback_database ? 1 : 0

  database_id   = linode_database_postgresql_v2.feedback[0].id
  database_type = "postgresql"
  allow_list    = local.feedback_allow_list
}

locals {
  feedback_database_region = var.feedback_database_region != "" ? var.feedback_database_region : var.index_region
  # Exactly the edges' public IPv4 addresses (the source of their connections: containers
  # reach the internet over IPv4 through the host), plus any admin networks asked for.
  feedback_allow_list = var.feedback_database ? sort(distinct(concat(local.edge_ipv4_cidr, var.feedback_database_extra_allow))) : []
  # Where the edges keep their votes. sslmode=verify-full: TLS is required and the server
  # must present a certificate for its host name, signed by the database's own CA (written
  # to the instance from ca_cert). Credentials are percent-encoded: a password may hold any
  # character (urlencode writes a space as "+", which a URL's user part reads literally). SQLite on the edge's feedback volume when there is no managed database.
  feedback_url = var.feedback_database ? format(
    "postgresql://%s:%s@%s:%d/defaultdb?sslmode=verify-full&sslrootcert=/etc/moviemind/feedback-db-ca.pem",
    replace(urlencode(linode_database_postgresql_v2.feedback[0].root_username), "+", "%20"),
    replace(urlencode(linode_database_postgresql_v2.feedback[0].root_password), "+", "%20"),
    linode_database_postgresql_v2.feedback[0].host_primary,
    linode_database_postgresql_v2.feedback[0].port,
  ) : "/app/var/feedback/feedback.sqlite3"
  # ca_cert arrives base64-encoded already: cloud-init decodes it (encoding: b64).
  feedback_db_ca_b64 = var.feedback_database ? linode_database_postgresql_v2.feedback[0].ca_cert : ""
  feedback_price     = var.feedback_database && var.feedback_database_price != null ? var.feedback_database_price : local.zero_price
}
