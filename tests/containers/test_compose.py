"""The compose cluster end to end: the real Dockerfile and compose.yaml on a Docker engine.

The engine is the one already running, or a private one the test starts (see engine.py);
base images come from the registry or are local stand-ins (see base_images.py). Everything
is torn down afterwards, passed or failed: containers, networks, volumes, the test's own
images on a shared engine, and a private engine's processes and host network changes.
"""

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.containers.base_images import BASE_IMAGES, named_base_images, provide_base_images, remove_standins
from tests.containers.engine import ROOT, TEST_LABEL, compose_binary, open_engine
from tests.support.cluster import (
    assert_room_survives_losing,
    clients_on_distinct_replicas,
    close_all,
    free_port,
    http_get,
    unique,
)

PROJECT = "chatscale-e2e"
CACHE = ROOT / ".run" / "compose-cache"
# compose.yaml with the test's own image names (see the file for why).
COMPOSE_FILES = [ROOT / "compose.yaml", Path(__file__).resolve().parent / "compose.test.yaml"]
APP_IMAGE = "chatscale-e2e-app:test"
WEB_IMAGE = "chatscale-e2e-web:test"


class ComposeStack:
    """`docker compose` for the test's project on the chosen engine."""

    def __init__(self, engine, env_file):
        self.engine = engine
        self.env_file = env_file
        self.standins = []

    def compose(self, *args, check=True, timeout=900):
        files = [argument for path in COMPOSE_FILES for argument in ("--file", str(path))]
        return self.engine.compose(
            *files, "--project-name", PROJECT, "--env-file", str(self.env_file), *args, check=check, timeout=timeout
        )

    def replica_ids(self):
        """Container ids (12 characters, the containers' host names) of the Daphne replicas."""
        return {line[:12] for line in self.compose("ps", "--quiet", "daphne").stdout.split()}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("compose")
    engine = open_engine(state / "engine")
    port = free_port()
    env_file = state / "compose.env"
    env_file.write_text(
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
        f"POSTGRES_PASSWORD={secrets.token_urlsafe(20)}\n"
        f"REDIS_PASSWORD={secrets.token_urlsafe(20)}\n"
        f"CHAT_ADDRESS=127.0.0.1\nCHAT_PORT={port}\n"
    )
    stack = ComposeStack(engine, env_file)
    try:
        engine.start()
        # Whatever an aborted earlier run left goes first.
        stack.compose("down", "--volumes", "--remove-orphans", timeout=300)
        started = time.monotonic()
        stack.standins = provide_base_images(engine, CACHE)
        standins = ", ".join(stack.standins) or "none"
        print(f"base images ready in {time.monotonic() - started:.0f} s; stand-ins built: {standins}")
        started = time.monotonic()
        stack.compose("up", "--build", "--wait", "--pull", "never", "--wait-timeout", "300")
        print(f"compose up --build --wait took {time.monotonic() - started:.0f} s")
        sizes = engine.docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}", "chatscale-e2e-*", capture=True
        )
        print("images: " + ", ".join(sizes.stdout.split("\n")).strip(", "))
        stack.url = f"http://127.0.0.1:{port}"
        stack.ws_url = f"ws://127.0.0.1:{port}"
        yield stack
    finally:
        tear_down(engine, stack, state)


def tear_down(engine, stack, state):
    """Remove everything the test made, pass or fail, and check that nothing is left."""
    if not engine.started:
        return
    started = time.monotonic()
    try:
        logs = stack.compose("logs", "--no-color", check=False, timeout=60)
        (state / "compose.log").write_text(logs.stdout + logs.stderr)
        stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=300)
        if engine.owns_engine:
            # Superseded builds of the app and web images would otherwise pile up in the data
            # root; the current ones and the stand-ins stay there as the next run's cache.
            engine.docker("image", "prune", "--force", capture=True)
        else:
            remove_own_images(engine, stack.standins)
        leftovers = project_leftovers(engine)
    finally:
        engine.stop()
    assert not leftovers, "left behind on the engine:\n" + "\n".join(leftovers)
    on_host = engine.leftovers_on_host()
    assert not on_host, (
        "the private dockerd's changes to the host survived the restore (+ added, - removed); "
        "compare iptables-save and ip6tables-save with the lines below:\n" + "\n".join(on_host)
    )
    print(f"\nteardown took {time.monotonic() - started:.0f} s")


def remove_own_images(engine, standins):
    """On a shared engine: the test's images, the stand-ins it built, and their dangling remains; nothing else."""
    for image in (APP_IMAGE, WEB_IMAGE):
        if engine.has_image(image):
            engine.docker("image", "rm", image, capture=True)
    # Stage images of the classic builder hang off the stand-ins: they go before their bases.
    engine.docker("image", "prune", "--force", "--filter", f"label={TEST_LABEL}", capture=True)
    remove_standins(engine, standins)
    engine.docker("image", "prune", "--force", "--filter", f"label={TEST_LABEL}", capture=True)


def project_leftovers(engine):
    """Containers, networks and volumes of the test's project, and on a shared engine its images."""
    project = f"label=com.docker.compose.project={PROJECT}"
    found = [
        f"{kind} {' '.join(ids)}"
        for kind, command in {
            "containers": ("ps", "--all", "--quiet", "--filter", project),
            "networks": ("network", "ls", "--quiet", "--filter", project),
            "volumes": ("volume", "ls", "--quiet", "--filter", project),
        }.items()
        if (ids := engine.docker(*command, capture=True).stdout.split())
    ]
    if not engine.owns_engine:
        listing = (
            "image",
            "ls",
            "--all",
            "--filter",
            f"label={TEST_LABEL}",
            "--format",
            "{{.ID}} {{.Repository}}:{{.Tag}}",
        )
        images = engine.docker(*listing, capture=True).stdout.strip()
        if images:
            found.append(f"images (docker image rm them):\n{images}")
    return found


def test_every_base_image_has_a_standin():
    assert named_base_images() == set(BASE_IMAGES)


def test_the_test_builds_only_under_its_own_image_names(tmp_path):
    """On a developer's engine the test must not overwrite, or later remove, the images `make up` built."""
    env_file = tmp_path / "compose.env"
    env_file.write_text("DJANGO_SECRET_KEY=x\nPOSTGRES_PASSWORD=x\nREDIS_PASSWORD=x\n")
    files = [argument for path in COMPOSE_FILES for argument in ("--file", str(path))]
    rendered = subprocess.run(
        [str(compose_binary()), *files, "--env-file", str(env_file), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    services = json.loads(rendered.stdout)["services"]
    built = {name: service for name, service in services.items() if "build" in service}
    assert set(built) == {"migrate", "gunicorn", "daphne", "nginx"}
    assert {service["image"] for service in built.values()} == {APP_IMAGE, WEB_IMAGE}
    assert all(service["build"]["labels"] == {TEST_LABEL: PROJECT} for service in built.values())


def test_the_room_page_loads_through_nginx(stack):
    status, headers, body = http_get(stack.url + "/chat/%E4%BC%9A%E8%AE%AE/")
    assert status == 200 and 'id="chat-log"' in body and "会议" in body
    assert headers["X-Replica"]  # Gunicorn's container
    status, headers, body = http_get(stack.url + "/static/chat/room.js")
    assert status == 200 and "new WebSocket" in body


def test_a_message_crosses_replicas(stack):
    clients = clients_on_distinct_replicas(stack.ws_url, "compose-cross", 3)
    try:
        assert {client.replica for client in clients} == stack.replica_ids()
        text = unique("across")
        clients[0].send(text)
        for client in clients:
            frame = client.wait_for_message(text)
            assert frame["from_replica"] == clients[0].replica and frame["to_replica"] == client.replica
    finally:
        close_all(clients)


def test_scaled_replicas_take_new_connections(stack):
    stack.compose("up", "--wait", "--pull", "never", "--scale", "daphne=5", "--wait-timeout", "300")
    replicas = stack.replica_ids()
    assert len(replicas) == 5
    # nginx re-resolves the service name every 5 s; new sockets then reach the new replicas.
    deadline = time.monotonic() + 30
    while True:
        try:
            clients = clients_on_distinct_replicas(stack.ws_url, "compose-scaled", 5)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    try:
        assert {client.replica for client in clients} == replicas
        text = unique("scaled")
        clients[-1].send(text)
        for client in clients:
            client.wait_for_message(text)
    finally:
        close_all(clients)


def test_restarting_one_replica_leaves_the_room_working(stack):
    clients = clients_on_distinct_replicas(stack.ws_url, "compose-restart", 3)
    victim, survivors = clients[0], clients[1:]
    try:
        # `docker compose restart` takes whole services; one replica is one container.
        stack.engine.docker("restart", "--time", "5", victim.replica, capture=True)
        clients.append(assert_room_survives_losing(victim, survivors, stack.ws_url))
    finally:
        close_all(clients)


def test_images_run_as_non_root(stack):
    for service in ("gunicorn", "daphne", "nginx"):
        container = stack.compose("ps", "--quiet", service).stdout.split()[0]
        user = stack.engine.docker("exec", container, "id", "-u", capture=True).stdout.strip()
        assert user != "0", f"{service} runs as root"


def test_no_secret_is_baked_into_the_image(stack):
    history = stack.engine.docker("history", "--no-trunc", APP_IMAGE, capture=True).stdout
    environment = stack.engine.docker(
        "image", "inspect", "--format", "{{json .Config.Env}}", APP_IMAGE, capture=True
    ).stdout
    assert "SECRET_KEY" not in history + environment
    assert "PASSWORD" not in history + environment
    container = stack.compose("ps", "--quiet", "gunicorn").stdout.split()[0]
    listing = stack.engine.docker("exec", container, "ls", "-a", "/app", capture=True).stdout.split()
    assert not {".env", ".git", ".venv", ".run", "db.sqlite3"} & set(listing), listing


def test_a_short_load_test_passes_against_compose(stack):
    """The locust suite against the compose cluster: every member, on every replica, gets every message."""
    locust = Path(sys.executable).parent / "locust"
    command = [
        str(locust),
        "--config",
        "loadtest/locust.conf",
        "--headless",
        "--host",
        stack.url,
        "--users",
        "12",
        "--spawn-rate",
        "6",
        "--run-time",
        "15s",
        # Containers, the engine and locust share two cores here: delivery is the point.
        "--max-cross-p99-ms",
        "1000",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "verdict: PASS" in output
    print(output[output.index("chatscale load test") :][:600])


def test_the_app_logged_no_errors(stack):
    """Runs last: whatever the other tests did, no server logged an error or a traceback."""
    logs = stack.compose("logs", "--no-color", "migrate", "gunicorn", "daphne").stdout
    problems = [line for line in logs.splitlines() if "Traceback" in line or "[ERROR]" in line or " ERROR " in line]
    assert not problems, "\n".join(problems[:20])
