#!/usr/bin/env bash
# Start Gunicorn (pages, admin, health checks) in the foreground; see deploy/gunicorn.conf.py.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CHATSCALE_REPLICA_NAME:=$(python -c 'import socket; print(socket.gethostname())')}"
export CHATSCALE_REPLICA_NAME
exec python -m gunicorn --config deploy/gunicorn.conf.py mysite.wsgi:application
