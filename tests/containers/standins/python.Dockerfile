# Stand-in for python:3.11-slim-bookworm: Debian's Python 3.11 where the official image
# keeps it (/usr/local/bin/python), with pip and venv, free of Debian's pip restrictions.
FROM chatscale-standin/bookworm-minbase:latest
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip ca-certificates \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED \
    && ln -s /usr/bin/python3 /usr/local/bin/python \
    && ln -s /usr/bin/python3 /usr/local/bin/python3 \
    && printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > /etc/pip.conf
# This machine's egress TLS is intercepted: trust what the host trusts, so pip works in builds.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
