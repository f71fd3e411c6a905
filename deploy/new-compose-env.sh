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
import os, re, secrets
text = open("deploy/compose.env.example").read()
text = re.sub(r"replace-with-50-random-characters", lambda _: secrets.token_urlsafe(50), text)
text = re.sub(r"replace-with-a-random-password", lambda _: secrets.token_urlsafe(24), text)
# Created readable by the owner only, from the first byte.
with os.fdopen(os.open(".env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as env_file:
    env_file.write(text)
PY
echo "wrote .env with fresh secrets"
