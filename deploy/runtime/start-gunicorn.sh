#!/usr/bin/env bash
# Start Gunicorn (pages, admin, health checks) in the foreground; see deploy/runtime/gunicorn.conf.py.
set -euo pipefail
source "$(dirname "$0")/common.sh"
exec python -m gunicorn --config deploy/runtime/gunicorn.conf.py mysite.wsgi:application
