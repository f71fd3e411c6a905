# Sourced by the start scripts: run from the project root, and settle the replica's name
# once so that Django, Daphne and nginx all agree on it.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
: "${CHATSCALE_REPLICA_NAME:=$(python -c 'import socket; print(socket.gethostname())')}"
export CHATSCALE_REPLICA_NAME
