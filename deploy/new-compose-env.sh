#!/usr/bin/env bash
# Write .env for docker compose from deploy/compose.env.example, with fresh random secrets.
# Refuses to overwrite an existing file.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -e .env ]]; then
    echo ".env exists; leaving it alone" >&2
    exit 0
fi
python3 - <<'PY'
import re, secrets
text = open("deploy/compose.env.example").read()
text = re.sub(r"replace-with-50-random-characters", lambda _: secrets.token_urlsafe(50), text)
text = re.sub(r"replace-with-a-random-password", lambda _: secrets.token_urlsafe(24), text)
with open(".env", "x") as env_file:
    env_file.write(text)
PY
chmod 600 .env
echo "wrote .env with fresh secrets"
