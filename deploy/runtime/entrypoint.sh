#!/usr/bin/env bash
# Container entrypoint: wait until the services this process needs answer, then exec the
# command (start-gunicorn.sh, start-daphne.sh or manage.py ...).
set -euo pipefail
# From the project root, where `python -m` finds mysite; the command keeps the caller's directory.
(cd "$(dirname "$0")/../.." && exec python -m deploy.runtime.wait_for_dependencies)
exec "$@"
