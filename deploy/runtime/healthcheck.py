"""Container health probe, standard library only (the image has no curl).

    python deploy/runtime/healthcheck.py http://127.0.0.1:8000/healthz/ready

Exits 0 when the URL answers 200. It sends the first of DJANGO_ALLOWED_HOSTS as the Host
header, since Django refuses hosts it does not serve, and ignores proxy variables.
"""

import os
import sys
import urllib.error
import urllib.request


def probe_host() -> str:
    """A host name Django accepts: the first entry of DJANGO_ALLOWED_HOSTS, without a leading dot."""
    hosts = [host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()]
    return hosts[0].lstrip(".") if hosts else "localhost"


def answers(url: str) -> bool:
    """True when ``url`` answers 200 within 3 seconds."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Host": probe_host()})  # noqa: S310 (a local http:// probe)
    try:
        with opener.open(request, timeout=3) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: healthcheck.py URL")
    sys.exit(0 if answers(sys.argv[1]) else 1)
