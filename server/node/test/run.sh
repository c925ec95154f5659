#!/usr/bin/env bash
# Run the Node lab scripts' checks with the machine's `node`.
# Usage: server/node/test/run.sh [name filter]
set -euo pipefail
exec node "$(dirname "$0")/check.js" "$@"
