"""Gunicorn settings, from the environment (docs/settings.md lists each variable)."""

from mysite import env

bind = env.get_str("GUNICORN_BIND", "0.0.0.0:8000")
# gthread workers keep nginx's upstream keepalive connections useful.
worker_class = "gthread"
workers = env.get_int("GUNICORN_WORKERS", 2, minimum=1, maximum=64)
threads = env.get_int("GUNICORN_THREADS", 4, minimum=1, maximum=64)
timeout = env.get_int("GUNICORN_TIMEOUT", 30, minimum=1)
graceful_timeout = 20
keepalive = 5
# Recycle workers now and then so a slow leak never becomes an outage.
max_requests = 2000
max_requests_jitter = 200
# Only nginx's address may set X-Forwarded-* (network policy keeps others out in Kubernetes).
forwarded_allow_ips = env.get_str("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# Gunicorn's control socket would live under $HOME, read-only in the container; nothing uses it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"
loglevel = env.get_str("GUNICORN_LOG_LEVEL", "info")
