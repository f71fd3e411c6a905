"""The native cluster's topology and log output (deploy/native/), without starting anything."""

import io
import sys
from pathlib import Path

import pytest

from deploy.native import processes, topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def options(tmp_path):
    return topology.Options(
        port=8000, replicas=3, run_dir=tmp_path / "cluster", redis_server="/usr/bin/redis-server", nginx="nginx"
    )


def build(options):
    return topology.build_topology(options, processes.PortPicker(), lambda redis_port: {"REDIS_PORT": str(redis_port)})


def test_the_topology_starts_redis_then_the_app_servers_then_nginx(options):
    specs = build(options)
    assert [(spec.name, spec.stage) for spec in specs] == [
        ("redis", topology.STAGE_REDIS),
        ("gunicorn", topology.STAGE_APP),
        ("daphne-1", topology.STAGE_APP),
        ("daphne-2", topology.STAGE_APP),
        ("daphne-3", topology.STAGE_APP),
        ("nginx", topology.STAGE_EDGE),
    ]
    ports = [spec.port for spec in specs]
    assert len(set(ports)) == len(ports), ports
    assert specs[-1].port == 8000


def test_every_django_process_shares_one_redis_and_knows_its_name(options):
    specs = {spec.name: spec for spec in build(options)}
    redis_port = str(specs["redis"].port)
    for name in ("gunicorn", "daphne-1", "daphne-2", "daphne-3"):
        assert specs[name].env["REDIS_PORT"] == redis_port
        assert specs[name].env["CHATSCALE_REPLICA_NAME"] == name
    assert specs["daphne-2"].env["DAPHNE_PORT"] == str(specs["daphne-2"].port)


def test_redis_per_replica_breaks_the_shared_channel_layer_on_purpose(options):
    options.redis_per_replica = True
    specs = {spec.name: spec for spec in build(options)}
    private = {name: spec for name, spec in specs.items() if spec.role == "redis" and name != "redis"}
    assert sorted(private) == ["redis-1", "redis-2", "redis-3"]
    for index in (1, 2, 3):
        assert specs[f"daphne-{index}"].env["REDIS_URL"].endswith(f":{private[f'redis-{index}'].port}/0")


def test_the_nginx_config_names_every_replica_and_keeps_routing_in_the_shared_files(options):
    specs = build(options)
    config = (options.run_dir / "nginx" / "nginx.conf").read_text()
    for spec in specs:
        if spec.role in ("daphne", "gunicorn"):
            assert f"server 127.0.0.1:{spec.port}" in config
    assert "listen 127.0.0.1:8000;" in config
    assert "include chatscale/server.conf;" in config
    assert "${" not in config
    assert (options.run_dir / "nginx" / "chatscale").resolve() == ROOT / "nginx"


def test_log_lines_are_prefixed_by_process_name_and_never_split():
    stream = io.StringIO()
    sink = processes.LogSink(stream, width=8)
    prefix = sink.prefix_for("daphne-1")
    sink.echo(prefix, b"Listening on TCP address\r\n")
    sink.say("cluster is up")
    assert stream.getvalue() == "daphne-1 | Listening on TCP address\ncluster is up\n"


def test_each_run_starts_a_fresh_log_and_shows_the_output(tmp_path):
    (tmp_path / "worker.log").write_text("a line from the previous run\n")
    stream = io.StringIO()
    spec = topology.ProcessSpec(
        "worker", "test", 0, [sys.executable, "-c", "print('first'); print('second')"], 0, lambda: True
    )
    process = processes.Process(spec, tmp_path, processes.LogSink(stream))
    process.start()
    assert process.popen.wait(timeout=10) == 0
    process.reader.join(timeout=5)
    assert (tmp_path / "worker.log").read_text() == "first\nsecond\n"
    assert stream.getvalue() == "worker     | first\nworker     | second\n"
    assert process.exit_reason() == "exited with status 0"
