#!/usr/bin/env bash
# Check a Big Three configuration before starting the service.
#
#   ./validate_env.sh                       # reads ./.env plus the environment
#   ./validate_env.sh --env-file prod.env --host 0.0.0.0 --port 8000
#
# Prints one line per finding (ERROR / WARN / OK) and exits 1 if any is an error.
# Secrets are never printed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -x "$here/.venv/bin/bigthree" ]]; then
    exec "$here/.venv/bin/bigthree" check-config "$@"
elif command -v bigthree >/dev/null 2>&1; then
    exec bigthree check-config "$@"
else
    export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
    exec "${PYTHON:-python3}" -m app.cli check-config "$@"
fi
