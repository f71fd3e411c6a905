# Stand-in for redis:7.4-bookworm: Debian's redis-server, run as the redis user from /data.
FROM chatscale-standin/bookworm-minbase:latest
RUN groupadd --system --gid 999 redis && useradd --system --uid 999 --gid redis --home-dir /data redis \
    && apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /data && chown redis:redis /data
WORKDIR /data
USER redis
EXPOSE 6379
CMD ["redis-server"]
