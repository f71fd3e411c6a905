# Sourced by the start scripts: run from the project root, where `python -m` finds mysite,
# chat and deploy. The replica's name is the settings' business (chat/replica.py).
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
