"""The native local cluster: Redis, N Daphne replicas, Gunicorn and nginx as local processes.

    python -m deploy.native.cluster --port 8000 --replicas 3

Prepares the database and static files, starts every process on 127.0.0.1, waits until
each one is healthy, prints the URL, and supervises them. Ctrl-C (or SIGTERM) stops all
of them; so does the death of any one, after saying which process died and why. Every
process's output appears here, prefixed by its name, and in its own fresh log file.
The processes themselves are data: see topology.py.
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
from collections.abc import Callable
from pathlib import Path

from deploy.native.processes import HOST, ROOT, ClusterError, LogSink, PortPicker, Process, find_program
from deploy.native.topology import Options, build_topology

STOP_GRACE_SECONDS = 10
# With --keep-going, a process that keeps dying is given up on (a crash loop is no fault to ride out).
RESTARTS_PER_MINUTE = 5


def read_or_create_secret(path: Path) -> str:
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

    def __init__(self, options: Options, keep_going: bool, start_timeout: float, sink: LogSink) -> None:
        self.options = options
        self.ports = PortPicker()
        self.keep_going = keep_going
        self.start_timeout = start_timeout
        self.sink = sink
        self.processes: list[Process] = []
        self.restarts: dict[str, list[float]] = {}
        self.stopping = False

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.options.port}"

    def base_env(self, redis_port: int) -> dict[str, str]:
        """The environment every Django process gets: production settings with a local secret."""
        run_dir = self.options.run_dir
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SECRET_KEY": read_or_create_secret(run_dir.parent / "secret-key"),
                "DJANGO_DEBUG": "false",
                # An inherited value (pytest-django sets one) would swap the settings module.
                "DJANGO_SETTINGS_MODULE": "mysite.settings",
                "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "REDIS_URL": f"redis://{HOST}:{redis_port}/0",
                "STATIC_ROOT": str(run_dir / "public" / "static"),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.setdefault("DATABASE_URL", f"sqlite:///{run_dir.parent / 'db.sqlite3'}")
        return env

    def prepare(self, env: dict[str, str]) -> None:
        """Migrate the database and collect static files for nginx."""
        for args in (["migrate", "--noinput"], ["collectstatic", "--noinput", "--clear"]):
            result = subprocess.run(
                [sys.executable, "manage.py", *args, "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True
            )
            if self.stopping:
                raise ClusterError("interrupted while preparing")
            if result.returncode != 0:
                raise ClusterError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        """Start the topology stage by stage: Redis, then the app servers, then nginx."""
        options = self.options
        options.port = self.ports.claim(options.port, "nginx") if options.port else self.ports.pick()
        log_dir = options.run_dir / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        (options.run_dir / "redis").mkdir(exist_ok=True)
        specs = build_topology(options, self.ports, self.base_env)
        nginx = next(spec for spec in specs if spec.role == "nginx")
        check = subprocess.run([nginx.command[0], "-t", "-q", *nginx.command[1:]], capture_output=True, text=True)
        if check.returncode != 0:
            raise ClusterError(f"nginx rejected its configuration:\n{check.stderr}")
        self.sink.say(f"preparing database and static files in {options.run_dir.parent} ...")
        self.prepare(nginx.env)

        for stage in sorted({spec.stage for spec in specs}):
            group = [Process(spec, log_dir, self.sink) for spec in specs if spec.stage == stage]
            for process in group:
                process.start()
                self.processes.append(process)
            for process in group:
                self.wait_until(process, process.ready)
        self.write_state()

    def wait_until(self, process: Process, is_healthy: Callable[[], bool]) -> None:
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

    def may_restart(self, name: str) -> bool:
        """Whether ``name`` may be restarted again: not more than RESTARTS_PER_MINUTE a minute."""
        now = time.monotonic()
        recent = [at for at in self.restarts.get(name, []) if now - at < 60] + [now]
        self.restarts[name] = recent
        if len(recent) > RESTARTS_PER_MINUTE:
            self.sink.say(f"{name} died {len(recent)} times within a minute; not restarting it again.")
            return False
        return True

    def write_state(self) -> None:
        """Record the running cluster in cluster.json, atomically (tests poll for it)."""
        state = {
            "url": self.url,
            "supervisor_pid": os.getpid(),
            "keep_going": self.keep_going,
            "processes": [p.describe() for p in self.processes],
        }
        partial = self.options.run_dir / "cluster.json.partial"
        partial.write_text(json.dumps(state, indent=2))
        os.replace(partial, self.options.run_dir / "cluster.json")

    def supervise(self) -> int:
        """Watch the processes until a signal arrives or one of them dies; return the exit status."""
        while not self.stopping:
            for process in [p for p in self.processes if p.exited()]:
                self.sink.say(f"\n{process.name} (pid {process.pid}) {process.exit_reason()}; {process.last_words()}")
                self.processes.remove(process)
                if self.keep_going and process.role in ("daphne", "redis") and self.may_restart(process.name):
                    # As an orchestrator restarts a pod: on the same address, Redis empty. nginx
                    # routes around a replica meanwhile; the replicas notice a Redis restart
                    # (chat/redis_watch.py) and their sockets resume.
                    restarted = Process(process.spec, process.log_path.parent, self.sink, fresh_log=False)
                    restarted.start()
                    self.processes.append(restarted)
                    self.sink.say(f"--keep-going: restarted {process.name} (pid {restarted.pid}).")
                    self.write_state()
                    continue
                self.sink.say("stopping the cluster because one of its processes died.")
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Stop the stages in reverse: nginx first (no new traffic), then the app servers, then Redis."""
        for stage in sorted({p.spec.stage for p in self.processes}, reverse=True):
            group = [p for p in self.processes if p.spec.stage == stage]
            for process in group:
                process.stop()
            deadline = time.monotonic() + STOP_GRACE_SECONDS
            for process in group:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.sink.say(f"{process.name} did not stop within {STOP_GRACE_SECONDS} s; killing it.")
                    process.stop(signal.SIGKILL)
                    process.wait()
            for process in group:
                if process.reader is not None:
                    process.reader.join(timeout=2)
        self.processes.clear()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
        help="restart a Daphne replica or Redis that dies (Redis empty), as an orchestrator would, "
        "instead of stopping everything (make cluster KEEP_GOING=true; the tests and the chaos load test use it)",
    )
    parser.add_argument(
        "--redis-per-replica",
        action="store_true",
        help="BROKEN ON PURPOSE: give each Daphne replica its own Redis, so rooms do not span replicas "
        "(proves that the load test fails when cross-replica delivery breaks)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="do not show the processes' output here (it still goes to their log files)",
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


def main(argv: list[str] | None = None) -> int:
    """Run the cluster until Ctrl-C, SIGTERM or the death of one of its processes."""
    args = parse_args(argv)
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        options = Options(
            port=args.port,
            replicas=args.replicas,
            run_dir=run_dir,
            redis_server=find_program("redis-server"),
            nginx=find_program("nginx"),
            redis_per_replica=args.redis_per_replica,
        )
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr, flush=True)
        return 1
    sink = LogSink(None if args.quiet else sys.stdout)
    cluster = Cluster(options, args.keep_going, args.start_timeout, sink)

    def request_stop(signum: int, frame: object) -> None:
        cluster.stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    status = 0
    try:
        cluster.start()
        lines = [f"  {p.name:<10} pid {p.pid:<8} {HOST}:{p.port:<6} log {p.log_path}" for p in cluster.processes]
        sink.say("\n".join(["chatscale cluster is up:", *lines]))
        sink.say(f"\n  open {cluster.url}/chat/   (Ctrl-C stops everything)\n")
        status = cluster.supervise()
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        if cluster.processes:
            sink.say("stopping: " + ", ".join(p.name for p in cluster.processes))
        cluster.stop()
        (run_dir / "cluster.json").unlink(missing_ok=True)
    if status == 0:
        sink.say("cluster stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())
