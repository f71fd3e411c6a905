#!/usr/bin/env bash
# Start one Daphne replica (WebSockets and health checks only) in the foreground. Its flags
# come from the settings (DAPHNE_* and CHATSCALE_* variables): see deploy/runtime/run_daphne.py.
set -euo pipefail
source "$(dirname "$0")/common.sh"
exec python -m deploy.runtime.run_daphne
