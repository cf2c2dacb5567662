#!/bin/sh
# Called by terraform_data.model_ready and edge_ready (terraform/model.tf, edge.tf) during apply: waits until the
# NodeBalancer reports a new model server's or edge's node UP, i.e. its /readyz check passes, so the
# instance it replaces is destroyed only once the new one serves. Needs curl and LINODE_TOKEN
# (the token terraform itself uses). Environment: NB_ID, CONFIG_ID, NODE_ID, TIMEOUT_S, LABEL.
set -eu
: "${LINODE_TOKEN:?LINODE_TOKEN is not set}"
api="${LINODE_API_URL:-https://api.linode.com/v4}"
url="$api/nodebalancers/$NB_ID/configs/$CONFIG_ID/nodes/$NODE_ID"
deadline=$(($(date +%s) + TIMEOUT_S))
while :; do
  status=$(curl -fsS --max-time 20 -H "Authorization: Bearer $LINODE_TOKEN" "$url" \
    | sed -n 's/.*"status": *"\([A-Za-z]*\)".*/\1/p' || true)
  if [ "$status" = UP ]; then
    echo "$LABEL: ready (NodeBalancer node UP)"
    exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "$LABEL: not ready after ${TIMEOUT_S}s (node status: ${status:-unknown}); the instance it replaces keeps running. Look at its logs (docs/deployment.md, Troubleshooting)." >&2
    exit 1
  fi
  echo "$LABEL: waiting for /readyz (node status: ${status:-unknown})"
  sleep 20
done
