#!/usr/bin/env bash
# Start one Daphne replica (WebSockets and health checks only) in the foreground.
# Every flag comes from the environment; the README lists the variables.
set -euo pipefail
source "$(dirname "$0")/common.sh"

# nginx turns this Server header into X-Replica on the handshake (see nginx/http.conf).
case "$(echo "${CHATSCALE_REPLICA_HEADER:-true}" | tr '[:upper:]' '[:lower:]')" in
    1|true|yes|on) server_name="chatscale-replica/${CHATSCALE_REPLICA_NAME}" ;;
    *) server_name="daphne" ;;
esac

exec python -m daphne \
    --bind "${DAPHNE_BIND:-0.0.0.0}" \
    --port "${DAPHNE_PORT:-8000}" \
    --proxy-headers \
    --ping-interval "${DAPHNE_PING_INTERVAL:-20}" \
    --ping-timeout "${DAPHNE_PING_TIMEOUT:-30}" \
    --websocket_timeout "${DAPHNE_WEBSOCKET_TIMEOUT:-43200}" \
    --application-close-timeout "${DAPHNE_APPLICATION_CLOSE_TIMEOUT:-10}" \
    --server-name "$server_name" \
    mysite.asgi:application
