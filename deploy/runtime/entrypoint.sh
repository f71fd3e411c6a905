#!/usr/bin/env bash
# Container entrypoint: wait until the services this process needs answer, then exec the
# command (start-gunicorn.sh, start-daphne.sh or manage.py ...).
set -euo pipefail
python /app/deploy/runtime/wait_for_dependencies.py
exec "$@"
