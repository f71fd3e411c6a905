#!/usr/bin/env bash
# Fill an example settings file with fresh random secrets:
#   deploy/dev/new-env-file.sh deploy/container/compose.env.example .env
#   deploy/dev/new-env-file.sh k8s/overlays/local/secrets.env.example k8s/overlays/local/secrets.env
# Each distinct placeholder "replace-with-..." gets one random value (URL-safe), so a
# password that also appears inside a URL stays consistent. An existing target is kept.
set -euo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: $0 EXAMPLE TARGET" >&2
    exit 2
fi
if [[ -e "$2" ]]; then
    echo "$2 exists; leaving it alone"
    exit 0
fi
python3 - "$1" "$2" <<'PY'
import os, re, secrets, sys
example, target = sys.argv[1:]
values = {}
def fresh(match):
    placeholder = match.group(0)
    length = 50 if "50" in placeholder else 24
    return values.setdefault(placeholder, secrets.token_urlsafe(length))
text = re.sub(r"replace-with-[a-z0-9-]+", fresh, open(example).read())
# Readable by the owner only, from the first byte.
with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
    out.write(text)
PY
echo "wrote $2 with fresh secrets"
