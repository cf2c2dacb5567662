# Inputs. Every validation uses only the variable itself (Terraform 1.5 cannot look at other
# variables or locals there); rules that relate two inputs are preconditions or check blocks.
# The region lists below must equal the keys of local.regions (tests/test_terraform.py checks).

# ---------------------------------------------------------------------------------- placement

variable "project" {
  type        = string
  description = "Name prefix for every label and tag: 3-16 lowercase letters, digits or dashes."
  default     = "moviemind"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}[a-z0-9]$", var.project)) && !strcontains(var.project, "--")
    error_message = "project must be 3-16 characters of lowercase letters, digits and single dashes, starting with a letter and ending with a letter or digit (Linode labels allow no \"--\")."
  }
}

variable "edge_regions" {
  type        = list(string)
  description = "Regions that get one edge instance each: put them where your users are. Linode region ids, e.g. [\"us-ord\", \"eu-central\"]."

  validation {
    condition     = length(var.edge_regions) >= 1 && length(var.edge_regions) <= 20 && length(distinct(var.edge_regions)) == length(var.edge_regions)
    error_message = "edge_regions needs 1 to 20 distinct region ids."
  }

  validation {
    condition     = alltrue([for r in var.edge_regions : contains(["us-east", "us-central", "us-west", "us-southeast", "us-ord", "us-iad", "us-sea", "us-mia", "us-lax", "ca-central", "br-gru", "eu-west", "gb-lon", "eu-central", "de-fra-2", "fr-par", "nl-ams", "se-sto", "it-mil", "es-mad", "ap-west", "in-bom-2", "in-maa", "ap-south", "sg-sin-2", "id-cgk", "ap-northeast", "jp-tyo-3", "jp-osa", "ap-southeast", "au-mel"], r)])
    error_message = "Every edge region must be a Linode core region id listed in terraform/locals.tf (local.regions), e.g. us-ord, eu-central, ap-south."
  }
}

variable "model_regions" {
  type        = map(number)
  description = "Model server hubs: region id => number of model servers there. A region with more than one server gets a NodeBalancer in front. Example: { \"us-ord\" = 2, \"eu-central\" = 1 }."

  validation {
    condition     = length(var.model_regions) >= 1 && length(var.model_regions) <= 10
    error_message = "model_regions needs 1 to 10 regions."
  }

  validation {
    condition     = alltrue([for r, n in var.model_regions : contains(["us-east", "us-central", "us-west", "us-southeast", "us-ord", "us-iad", "us-sea", "us-mia", "us-lax", "ca-central", "br-gru", "eu-west", "gb-lon", "eu-central", "de-fra-2", "fr-par", "nl-ams", "se-sto", "it-mil", "es-mad", "ap-west", "in-bom-2", "in-maa", "ap-south", "sg-sin-2", "id-cgk", "ap-northeast", "jp-tyo-3", "jp-osa", "ap-southeast", "au-mel"], r)])
    error_message = "Every model region must be a Linode core region id listed in terraform/locals.tf (local.regions)."
  }

  validation {
    condition     = alltrue([for r, n in var.model_regions : n >= 1 && n <= 10 && floor(n) == n])
    error_message = "Each model region needs a whole number of model servers from 1 to 10."
  }
}

variable "edge_instance_type" {
  type        = string
  description = "Linode plan for the edges. g6-nanode-1 (1 GB) holds MiniLM, the index and Caddy for catalogs up to ~100k movies."
  default     = "g6-nanode-1"

  validation {
    condition     = can(regex("^g[0-9]+-(nanode|standard|dedicated|highmem|premium)-[0-9]+$", var.edge_instance_type))
    error_message = "edge_instance_type must be a Linode plan id such as g6-nanode-1 or g6-standard-2."
  }
}

variable "model_instance_type" {
  type        = string
  description = "Linode plan for the model servers. The reference Mistral-7B Q4_K_M needs ~6 GB of RAM: an 8 GB plan (g6-standard-4, or g6-dedicated-4 for steady decode speed) at least."
  default     = "g6-dedicated-4"

  validation {
    condition     = can(regex("^g[0-9]+-(nanode|standard|dedicated|highmem|premium)-[0-9]+$", var.model_instance_type))
    error_message = "model_instance_type must be a Linode plan id such as g6-standard-4 or g6-dedicated-4."
  }
}

variable "os_image" {
  type        = string
  description = "Linode distribution image for every instance. Must support cloud-init through the Metadata service and ship docker.io + docker-compose-v2 packages."
  default     = "linode/ubuntu24.04"

  validation {
    condition     = contains(["linode/ubuntu24.04", "linode/ubuntu22.04"], var.os_image)
    error_message = "os_image must be linode/ubuntu24.04 or linode/ubuntu22.04 (the cloud-init templates install Ubuntu's docker.io and docker-compose-v2)."
  }
}

variable "tags" {
  type        = list(string)
  description = "Extra tags on every instance, firewall and NodeBalancer."
  default     = []

  validation {
    condition     = alltrue([for t in var.tags : can(regex("^[A-Za-z0-9._:-]{3,50}$", t))])
    error_message = "Each tag must be 3-50 characters of letters, digits and ._:-"
  }
}

# ------------------------------------------------------------------------------------- images

variable "image_registry" {
  type        = string
  description = "Registry path the images were pushed to, without the image name, e.g. ghcr.io/your-org/moviemind. Instances pull <image_registry>/edge:<edge_image_tag> and <image_registry>/model-server:<model_image_tag>."

  validation {
    condition     = can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(\\.[a-z0-9-]+)*(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+$", var.image_registry))
    error_message = "image_registry must look like registry.example.com/org/project (lowercase, no tag, no trailing slash)."
  }
}

variable "edge_image_tag" {
  type        = string
  description = "Tag of the edge image to run (pin a release, not latest)."
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.edge_image_tag)) && var.edge_image_tag != "latest"
    error_message = "edge_image_tag must be a Docker tag (letters, digits, _.-, at most 128 characters) other than latest."
  }
}

variable "model_image_tag" {
  type        = string
  description = "Tag of the model server image to run. Use a tag built with WITH_LLAMA=1 for model_engine = llama_cpp."
  default     = "0.1.0"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.model_image_tag)) && var.model_image_tag != "latest"
    error_message = "model_image_tag must be a Docker tag (letters, digits, _.-, at most 128 characters) other than latest."
  }
}

variable "edge_image_digest" {
  type        = string
  description = "Digest of the pushed edge image (sha256:...; `docker buildx build --push --metadata-file` or `docker buildx imagetools inspect` prints it). Instances pull <image_registry>/edge:<edge_image_tag>@<digest>: a tag can be moved to other content, a digest cannot."

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.edge_image_digest))
    error_message = "edge_image_digest must be sha256: followed by 64 lowercase hex digits."
  }
}

variable "model_image_digest" {
  type        = string
  description = "Digest of the pushed model server image (sha256:...), pulled as <image_registry>/model-server:<model_image_tag>@<digest>."

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.model_image_digest))
    error_message = "model_image_digest must be sha256: followed by 64 lowercase hex digits."
  }
}

variable "caddy_image" {
  type        = string
  description = "Caddy image in front of each edge (ports 80/443, and 8080 for the NodeBalancer's readiness probe), pinned by digest. Needs Caddy 2.7 or newer (PROXY protocol listener)."
  default     = "caddy:2.10.0-alpine@sha256:e2e3a089760c453bc51c4e718342bd7032d6714f15b437db7121bfc2de2654a6"

  validation {
    condition     = can(regex("^[a-z0-9./_-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$", var.caddy_image))
    error_message = "caddy_image must be name:tag@sha256:digest (pinned by digest)."
  }
}

variable "registry_username" {
  type        = string
  description = "User for `docker login` on every instance when the registry is private; empty for a public registry."
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9._@-]{0,128}$", var.registry_username))
    error_message = "registry_username may only use letters, digits and ._@-"
  }
}

variable "registry_password" {
  type        = string
  description = "Password or read-only token for registry_username; empty for a public registry."
  default     = ""
  sensitive   = true

  validation {
    condition     = length(var.registry_password) <= 4096 && !strcontains(var.registry_password, "\n")
    error_message = "registry_password must be a single line of at most 4096 characters."
  }
}

# ------------------------------------------------------------------------------------- access

variable "ssh_authorized_keys" {
  type        = list(string)
  description = "SSH public keys for root on every instance. SSH is only reachable from admin_cidrs."
  default     = []

  validation {
    condition     = alltrue([for k in var.ssh_authorized_keys : can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com) [A-Za-z0-9+/=]+( .*)?$", k))])
    error_message = "Each SSH key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa, ecdsa-sha2-*)."
  }
}

variable "admin_cidrs" {
  type        = list(string)
  description = "Networks allowed to SSH into the instances, e.g. [\"203.0.113.7/32\"]. Empty: SSH closed (use the Lish console)."
  default     = []

  validation {
    condition     = alltrue([for c in var.admin_cidrs : can(cidrhost(c, 0))])
    error_message = "Each admin CIDR must be an IPv4 or IPv6 network in CIDR notation, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = !contains(var.admin_cidrs, "0.0.0.0/0") && !contains(var.admin_cidrs, "::/0")
    error_message = "admin_cidrs must not open SSH to the whole internet (0.0.0.0/0 or ::/0)."
  }
}

variable "model_token" {
  type        = string
  description = "Bearer token the edges present to the model servers (MOVIEMIND_MODEL_TOKEN / MOVIEMIND_EDGE_UPSTREAM_TOKEN). Generate with `openssl rand -hex 32`."
  sensitive   = true

  validation {
    condition     = can(regex("^[A-Za-z0-9._~+/=-]{32,256}$", var.model_token))
    error_message = "model_token must be 32-256 characters of letters, digits and ._~+/=- (e.g. openssl rand -hex 32)."
  }
}

variable "edge_api_key" {
  type        = string
  description = "API key the edge requires from clients (MOVIEMIND_EDGE_API_KEY); empty leaves the API open."
  default     = ""
  sensitive   = true

  validation {
    condition     = var.edge_api_key == "" || can(regex("^[A-Za-z0-9._~+/=-]{16,256}$", var.edge_api_key))
    error_message = "edge_api_key must be empty or 16-256 characters of letters, digits and ._~+/=-"
  }
}

# -------------------------------------------------------------------------------------- model

variable "model_preset" {
  type        = string
  description = "What the model servers run: mistral-7b-openorca-q4km (the reference model: Mistral-7B-OpenOrca Q4_K_M from this deployment's bucket, s3://<index_bucket>/models/mistral-7b-openorca.Q4_K_M.gguf, uploaded once; verified at first start; needs an 8 GB plan), smollm2-135m-demo (the 135M demo model inside the image, no download; only when asked for) or custom (model_gguf_url + model_gguf_sha256). Each preset carries its engine, context and timeouts (local.model_presets)."
  default     = "mistral-7b-openorca-q4km"

  validation {
    condition     = contains(["mistral-7b-openorca-q4km", "smollm2-135m-demo", "custom"], var.model_preset)
    error_message = "model_preset must be mistral-7b-openorca-q4km (the default), smollm2-135m-demo or custom."
  }
}

variable "model_gguf_url" {
  type        = string
  description = "With model_preset = custom: where each model server fetches the GGUF at start (MOVIEMIND_MODEL_URL): s3://<index_bucket>/<key> in this deployment's bucket (signed with the servers' read-only key), or an https:// URL. Ignored by the other presets, which carry their own."
  default     = ""

  validation {
    condition     = var.model_gguf_url == "" || can(regex("^(https|s3)://[A-Za-z0-9._~:/?#@!&()*+,;=%-]+$", var.model_gguf_url))
    error_message = "model_gguf_url must be empty, s3://bucket/key or an https:// URL (no spaces or quotes)."
  }
}

variable "model_gguf_sha256" {
  type        = string
  description = "sha256 of the GGUF the model servers fetch (MOVIEMIND_MODEL_SHA256): the server refuses a file that does not match. Required for model_preset = custom, and for mistral-7b-openorca-q4km unless its preset pins one (it does not yet: see docs/deployment.md, \"The model's checksum\")."
  default     = ""

  validation {
    condition     = var.model_gguf_sha256 == "" || can(regex("^[0-9a-f]{64}$", var.model_gguf_sha256))
    error_message = "model_gguf_sha256 must be empty or 64 lowercase hex digits."
  }
}

variable "model_engine" {
  type        = string
  description = "Inference engine (MOVIEMIND_MODEL_ENGINE): ctransformers, or llama_cpp with an image built WITH_LLAMA=1. Empty: the preset's engine."
  default     = ""

  validation {
    condition     = contains(["", "ctransformers", "llama_cpp"], var.model_engine)
    error_message = "model_engine must be empty (the preset's), ctransformers or llama_cpp."
  }
}

variable "model_context" {
  type        = number
  description = "Context window in tokens (MOVIEMIND_MODEL_CONTEXT); 0: the preset's. Each slot's KV cache grows with it: ~0.5 GB per slot at 4096 for a 7B GQA model in f16."
  default     = 0

  validation {
    condition     = var.model_context == 0 || (var.model_context >= 512 && var.model_context <= 32768 && floor(var.model_context) == var.model_context)
    error_message = "model_context must be 0 (the preset's) or a whole number from 512 to 32768."
  }
}

variable "model_hold" {
  type        = map(string)
  description = "Rollouts one region at a time: model region => the release id it keeps (from `terraform output model_release_ids`, copied before the change). Servers of a held region are not replaced, whatever changes (image, model, threads, slots, monitoring, alert rules); the other regions get the current settings. Empty: every region runs the current settings. docs/deployment.md, \"Roll out a new model server release\"."
  default     = {}

  validation {
    condition     = alltrue([for r, id in var.model_hold : can(regex("^[0-9a-f]{12}$", id))])
    error_message = "model_hold values are release ids: 12 hex digits from `terraform output model_release_ids`."
  }
}

variable "edge_hold" {
  type        = map(string)
  description = "Edge rollouts one region at a time: edge region => the release id it keeps (from `terraform output edge_release_ids`). Held edges are not replaced. docs/deployment.md, \"Roll out a new edge release\"."
  default     = {}

  validation {
    condition     = alltrue([for r, id in var.edge_hold : can(regex("^[0-9a-f]{12}$", id))])
    error_message = "edge_hold values are release ids: 12 hex digits from `terraform output edge_release_ids`."
  }
}

variable "model_ready_wait" {
  type        = bool
  description = "During apply, wait until each new model server's and edge's NodeBalancer node is UP (its /readyz check passes) before the instance it replaces is destroyed. Needs curl and LINODE_TOKEN where terraform runs."
  default     = true
}

variable "model_ready_timeout_s" {
  type        = number
  description = "How long apply waits for a new model server or edge to pass its readiness check (boot, image pull and, for the reference model, a 4.4 GB download from Object Storage)."
  default     = 1800

  validation {
    condition     = var.model_ready_timeout_s >= 60 && var.model_ready_timeout_s <= 7200
    error_message = "model_ready_timeout_s must be between 60 and 7200 seconds."
  }
}

variable "model_threads" {
  type        = number
  description = "Compute threads per model server (MOVIEMIND_MODEL_THREADS); 0 uses every vCPU."
  default     = 0

  validation {
    condition     = var.model_threads >= 0 && var.model_threads <= 256 && floor(var.model_threads) == var.model_threads
    error_message = "model_threads must be a whole number from 0 to 256."
  }
}

variable "model_slots" {
  type        = number
  description = "Concurrent generations per model server (MOVIEMIND_MODEL_SLOTS); the threads are split between them."
  default     = 1

  validation {
    condition     = var.model_slots >= 1 && var.model_slots <= 16 && floor(var.model_slots) == var.model_slots
    error_message = "model_slots must be a whole number from 1 to 16."
  }
}

variable "model_queue" {
  type        = number
  description = "Requests that may wait for a slot (MOVIEMIND_MODEL_QUEUE); beyond it the server answers 429 at once and the edge tries the next region. The edges' timeouts are derived from it (docs/deployment.md, \"Timeouts and queue sizes\"): each queued 7B request adds about 42 s, and plan refuses a queue whose wait passes 300 s."
  default     = 1

  validation {
    condition     = var.model_queue >= 0 && var.model_queue <= 1000 && floor(var.model_queue) == var.model_queue
    error_message = "model_queue must be a whole number from 0 to 1000."
  }
}

variable "model_port" {
  type        = number
  description = "TLS port of each model region's NodeBalancer, which the edges call. The NodeBalancer terminates TLS with the region's certificate and reaches the servers on 8001 over the region's VPC."
  default     = 8443

  validation {
    condition     = var.model_port >= 1024 && var.model_port <= 65535 && floor(var.model_port) == var.model_port && var.model_port != 8001
    error_message = "model_port must be a whole number from 1024 to 65535, other than 8001 (the server's own port behind the TLS proxy)."
  }
}

# -------------------------------------------------------------------------------------- index

variable "index_region" {
  type        = string
  description = "Object Storage region of the index bucket. Pick one near most edges; every edge pulls only on a new version."

  validation {
    condition     = contains(["us-east", "us-southeast", "us-ord", "us-iad", "us-sea", "us-mia", "us-lax", "br-gru", "gb-lon", "eu-central", "de-fra-2", "fr-par", "nl-ams", "se-sto", "it-mil", "es-mad", "in-maa", "ap-south", "sg-sin-2", "id-cgk", "jp-tyo-3", "jp-osa", "au-mel"], var.index_region)
    error_message = "index_region must be a region that offers Object Storage (local.regions entries with object_storage = true), e.g. us-ord, us-east, eu-central, fr-par, ap-south, jp-osa; us-central, us-west, ca-central, eu-west, ap-west, in-bom-2, ap-northeast and ap-southeast have none."
  }
}

variable "index_bucket" {
  type        = string
  description = "Name of the Object Storage bucket for index bundles. Bucket names are global per region: make it unique, e.g. moviemind-index-<your-org>."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.index_bucket))
    error_message = "index_bucket must be 3-63 characters of lowercase letters, digits and dashes, starting and ending with a letter or digit."
  }
}

variable "index_prefix" {
  type        = string
  description = "Key prefix of the index inside the bucket: edges read s3://<index_bucket>/<index_prefix>."
  default     = "index"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9/_-]{0,99}$", var.index_prefix)) && !endswith(var.index_prefix, "/")
    error_message = "index_prefix must be 1-100 characters of lowercase letters, digits and /_- with no leading or trailing slash."
  }
}

# --------------------------------------------------------------------------------------- edge

variable "edge_reload_interval_s" {
  type        = number
  description = "How often each edge checks the bucket for a newly published index (MOVIEMIND_EDGE_RELOAD_INTERVAL_S)."
  default     = 60

  validation {
    condition     = var.edge_reload_interval_s >= 10 && var.edge_reload_interval_s <= 86400
    error_message = "edge_reload_interval_s must be between 10 and 86400 seconds."
  }
}

variable "edge_rate_limit_per_minute" {
  type        = number
  description = "Requests per minute each client may make to the edge's API (MOVIEMIND_EDGE_RATE_LIMIT_PER_MINUTE), with a burst of 10 seconds' worth; clients are told apart by the address the NodeBalancer passes on (IPv4 or IPv6). 0: no limit."
  default     = 600

  validation {
    condition     = var.edge_rate_limit_per_minute >= 0 && var.edge_rate_limit_per_minute <= 100000 && floor(var.edge_rate_limit_per_minute) == var.edge_rate_limit_per_minute
    error_message = "edge_rate_limit_per_minute must be a whole number from 0 to 100000."
  }
}

variable "edge_cors_origins" {
  type        = list(string)
  description = "Browser origins allowed to call the edge API from other sites (MOVIEMIND_EDGE_CORS_ORIGINS). The bundled web page needs none."
  default     = []

  validation {
    condition     = alltrue([for o in var.edge_cors_origins : can(regex("^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$", o))])
    error_message = "Each CORS origin must be scheme://host[:port] without a path, e.g. https://movies.example.com."
  }
}

variable "edge_hostnames" {
  type        = map(string)
  description = "DNS name per edge region, e.g. { \"us-ord\" = \"us.movies.example.com\" }: Caddy obtains a Let's Encrypt certificate for it and serves HTTPS. Every edge region needs one (point its A and AAAA records at the edge_addresses output) unless edge_insecure_http is true."
  default     = {}

  validation {
    condition     = alltrue([for r, h in var.edge_hostnames : can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", h))])
    error_message = "Each edge hostname must be a lowercase fully qualified DNS name such as us.movies.example.com."
  }
}

variable "edge_insecure_http" {
  type        = bool
  description = "Serve plain HTTP on port 80 for edge regions without a hostname. Only for a short trial: API keys and queries then travel in clear, so edge_api_key must stay empty."
  default     = false
}

variable "edge_tls_issuer" {
  type        = string
  description = "Where Caddy gets each edge's certificate: acme (Let's Encrypt, by HTTP-01 or TLS-ALPN-01 through the NodeBalancer) or internal (Caddy's own CA: for staging and tests, browsers will not trust it)."
  default     = "acme"

  validation {
    condition     = contains(["acme", "internal"], var.edge_tls_issuer)
    error_message = "edge_tls_issuer must be acme or internal."
  }
}

# --------------------------------------------------------------------------------- monitoring

variable "monitoring" {
  type        = bool
  description = "Run a small Prometheus and Alertmanager next to each edge and each model server: Prometheus scrapes the tier's /metrics every 15 s, keeps 7 days and evaluates the alert rules in terraform/monitoring/alerts.yml; Alertmanager sends the alerts to alert_webhook_url. Both listen on 127.0.0.1 only (9090, 9093; reach them with ssh -L)."
  default     = false
}

variable "prometheus_image" {
  type        = string
  description = "Prometheus image for monitoring = true, pinned by digest."
  default     = "prom/prometheus:v3.5.0@sha256:63805ebb8d2b3920190daf1cb14a60871b16fd38bed42b857a3182bc621f4996"

  validation {
    condition     = can(regex("^[a-z0-9./_-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$", var.prometheus_image))
    error_message = "prometheus_image must be name:tag@sha256:digest (pinned by digest)."
  }
}

variable "alertmanager_image" {
  type        = string
  description = "Alertmanager image for monitoring = true, pinned by digest: it routes the alert rules' notifications to alert_webhook_url."
  default     = "prom/alertmanager:v0.28.1@sha256:27c475db5fb156cab31d5c18a4251ac7ed567746a2483ff264516437a39b15ba"

  validation {
    condition     = can(regex("^[a-z0-9./_-]+:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}@sha256:[0-9a-f]{64}$", var.alertmanager_image))
    error_message = "alertmanager_image must be name:tag@sha256:digest (pinned by digest)."
  }
}

variable "alert_webhook_url" {
  type        = string
  description = "Where Alertmanager (monitoring = true) sends every alert: an HTTPS webhook receiving Alertmanager's JSON (e.g. a chat or paging service's incoming webhook). Empty: alerts are evaluated and shown on 127.0.0.1:9090/9093 but reach no one."
  default     = ""
  sensitive   = true

  validation {
    condition     = var.alert_webhook_url == "" || can(regex("^https://[A-Za-z0-9._~:/?#@!&()*+,;=%-]+$", var.alert_webhook_url))
    error_message = "alert_webhook_url must be empty or an https:// URL."
  }
}

# -------------------------------------------------------------------------------------- costs

variable "feedback_database" {
  type        = bool
  default     = false
  description = "true: one Linode managed PostgreSQL holds every edge's feedback votes (TLS, allow_list = the edges). false: each edge keeps its votes in SQLite on its own Docker volume (per region; docs/deployment.md, \"Feedback votes\")."
}

variable "feedback_database_region" {
  type        = string
  default     = ""
  description = "Region of the managed feedback database. Empty: index_region."

  validation {
    condition     = can(regex("^([a-z]{2}-[a-z]+(-[0-9]+)?)?$", var.feedback_database_region))
    error_message = "feedback_database_region must be a Linode region id such as us-ord, or empty (index_region)."
  }
}

variable "feedback_database_type" {
  type        = string
  default     = "g6-nanode-1"
  description = "Plan of the managed feedback database's node (GET https://api.linode.com/v4/databases/types lists them with prices). The smallest shared plan holds millions of votes."

  validation {
    condition     = can(regex("^g6-(nanode|standard|dedicated)-[0-9]+$", var.feedback_database_type))
    error_message = "feedback_database_type must be a Linode plan id such as g6-nanode-1."
  }
}

variable "feedback_database_engine" {
  type        = string
  default     = "postgresql/16"
  description = "Engine and major version of the managed feedback database, as engine_id (GET https://api.linode.com/v4/databases/engines lists them)."

  validation {
    condition     = can(regex("^postgresql/[0-9]+$", var.feedback_database_engine))
    error_message = "feedback_database_engine must be postgresql/MAJOR, e.g. postgresql/16."
  }
}

variable "feedback_database_extra_allow" {
  type        = list(string)
  default     = []
  description = "CIDRs besides the edges that may reach the feedback database, e.g. the host that runs `index_builder build --feedback`. Empty: the edges only."

  validation {
    condition     = alltrue([for c in var.feedback_database_extra_allow : can(cidrhost(c, 0)) && c != "0.0.0.0/0" && c != "::/0"])
    error_message = "feedback_database_extra_allow takes CIDRs (e.g. 203.0.113.7/32), never the whole internet."
  }
}

variable "feedback_database_price" {
  type = object({
    hourly  = number
    monthly = number
  })
  default     = null
  description = "USD price of the feedback database's plan for estimated_cost (GET https://api.linode.com/v4/databases/types, engines.postgresql, quantity 1). null: not counted (no current price could be confirmed when this was written; a check warns)."
}

variable "price_table" {
  type = object({
    as_of          = string
    source         = string
    instance       = map(object({ hourly = number, monthly = number }))
    nodebalancer   = object({ hourly = number, monthly = number })
    object_storage = object({ hourly = number, monthly = number })
    volume         = object({ hourly = number, monthly = number })
  })
  description = "USD prices for the cost outputs. Linode bills hourly up to a monthly cap. Dated: override it when prices change (GET https://api.linode.com/v4/linode/types needs no token). Some regions (e.g. id-cgk, br-gru) cost more than these base prices."
  default = {
    as_of  = "2026-09-17"
    source = "https://api.linode.com/v4/linode/types base prices (nanode, standard, dedicated); NodeBalancer, Object Storage and Block Storage from the Akamai pricing page"
    instance = {
      "g6-nanode-1"     = { hourly = 0.0075, monthly = 5 }
      "g6-standard-1"   = { hourly = 0.018, monthly = 12 }
      "g6-standard-2"   = { hourly = 0.036, monthly = 24 }
      "g6-standard-4"   = { hourly = 0.072, monthly = 48 }
      "g6-standard-6"   = { hourly = 0.144, monthly = 96 }
      "g6-standard-8"   = { hourly = 0.288, monthly = 192 }
      "g6-dedicated-2"  = { hourly = 0.054, monthly = 36 }
      "g6-dedicated-4"  = { hourly = 0.108, monthly = 72 }
      "g6-dedicated-8"  = { hourly = 0.216, monthly = 144 }
      "g6-dedicated-16" = { hourly = 0.432, monthly = 288 }
    }
    nodebalancer   = { hourly = 0.015, monthly = 10 }
    object_storage = { hourly = 0.0075, monthly = 5 }
    # Block Storage: $0.10 per GB and month; one 10 GB volume (the minimum) per edge region.
    volume = { hourly = 0.0015, monthly = 1 }
  }

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.price_table.as_of)) && length(var.price_table.instance) >= 1
    error_message = "price_table.as_of must be a YYYY-MM-DD date and price_table.instance must list at least one plan."
  }

  validation {
    condition     = alltrue([for t, p in var.price_table.instance : p.hourly >= 0 && p.monthly >= 0]) && var.price_table.nodebalancer.hourly >= 0 && var.price_table.object_storage.monthly >= 0
    error_message = "Prices cannot be negative."
  }
}
