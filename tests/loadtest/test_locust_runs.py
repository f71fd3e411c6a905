"""Short headless locust runs: a healthy cluster passes, a deliberately broken one fails."""

import subprocess
import sys
from pathlib import Path

from tests.support.cluster import RunningCluster, free_port

ROOT = Path(__file__).resolve().parents[2]
LOCUST = Path(sys.executable).parent / "locust"


def run_locust(url, reports, run_time="25s", extra=()):
    command = [
        str(LOCUST),
        "--config",
        "loadtest/locust.conf",
        "--headless",
        "--host",
        url,
        "--users",
        "18",
        "--spawn-rate",
        "9",
        "--run-time",
        run_time,
        "--csv",
        str(reports / "chatscale"),
        "--html",
        str(reports / "report.html"),
        *extra,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_a_healthy_cluster_passes(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster")
    try:
        result = run_locust(cluster.url, tmp_path)
    finally:
        cluster.stop()
    output = result.stdout + result.stderr
    print(output[-2500:])
    assert result.returncode == 0, output[-3000:]
    assert "verdict: PASS" in output
    assert "deliver cross-replica" in (tmp_path / "chatscale_stats.csv").read_text()
    assert (tmp_path / "report.html").stat().st_size > 0


def chaos_run(cluster, reports):
    extra = ["--chaos", "--cluster-state", str(cluster.run_dir / "cluster.json"), "--chaos-after", "6"]
    return run_locust(cluster.url, reports, run_time="30s", extra=[*extra, "--max-cross-p99-ms", "2000"])


def test_chaos_a_replica_and_redis_killed_mid_run_lose_no_message(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster")  # --keep-going: the supervisor restarts what dies
    try:
        result = chaos_run(cluster, tmp_path)
    finally:
        cluster.stop()
    output = result.stdout + result.stderr
    print(output[-2500:])
    assert result.returncode == 0, output[-3000:]
    assert "killed daphne-2" in output and "killed redis" in output and "restarted in" in output
    assert "silently lost 0" in output and "duplicates 0" in output
    assert "verdict: PASS" in output


def test_chaos_against_replicas_without_a_shared_channel_layer_fails(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster", extra_args=["--redis-per-replica"])
    try:
        result = chaos_run(cluster, tmp_path)
    finally:
        cluster.stop()
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "verdict: FAIL" in output and "killed daphne-2" in output


def test_replicas_without_a_shared_channel_layer_fail(tmp_path):
    cluster = RunningCluster(tmp_path / "cluster", extra_args=["--redis-per-replica"])
    try:
        result = run_locust(cluster.url, tmp_path, run_time="15s")
    finally:
        cluster.stop()
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "verdict: FAIL" in output
    assert "cross-replica delivery ratio 0.0000%" in output


def test_distributed_workers_ledgers_are_merged(tmp_path):
    """A master and two workers on one machine: the verdict covers every worker's users."""
    cluster = RunningCluster(tmp_path / "cluster")
    port = str(free_port())
    worker_command = [
        str(LOCUST),
        "--config",
        "loadtest/locust.conf",
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        port,
    ]
    workers = [
        subprocess.Popen(worker_command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        # Latency is not the point here (three locust processes share two cores): merging is.
        result = run_locust(
            cluster.url,
            tmp_path,
            run_time="20s",
            extra=(
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                port,
                "--expect-workers",
                "2",
                "--max-cross-p99-ms",
                "5000",
            ),
        )
    finally:
        for worker in workers:
            worker.wait(timeout=60)
        cluster.stop()
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "merged the ledgers of 2 worker(s)" in output
    assert "users 18 on replicas" in output and "verdict: PASS" in output
