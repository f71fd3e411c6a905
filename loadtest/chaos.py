"""The faults of `make loadtest-chaos`: kill a Daphne replica, then Redis, in the middle of a run.

Works on the native cluster (`make cluster KEEP_GOING=true`), whose supervisor restarts what
dies, as an orchestrator would: it reads the processes' PIDs from cluster.json and waits
there for each restart. Returns what it did, for the verdict.
"""

import json
import os
import signal
import time

import gevent


def process(state_path, name):
    """The pid of ``name`` in cluster.json, or None."""
    with open(state_path) as state_file:
        state = json.load(state_file)
    if not state.get("keep_going"):
        raise RuntimeError(
            f"{state_path}: the cluster stops when a process dies; start it with `make cluster KEEP_GOING=true`"
        )
    return next((p["pid"] for p in state["processes"] if p["name"] == name), None)


def kill_and_wait_for_restart(state_path, name, events, started):
    """SIGKILL ``name``; wait up to 30 s for the supervisor to run it again."""
    old = process(state_path, name)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 30:
        gevent.sleep(0.2)
        new = process(state_path, name)
        if new and new != old:
            events.append(f"killed {name} at {killed - started:.1f} s, restarted in {time.monotonic() - killed:.1f} s")
            return True
    events.append(f"killed {name} at {killed - started:.1f} s; it was not restarted within 30 s")
    return False


def run(options):
    """Kill daphne-2 after --chaos-after seconds and Redis as long again later."""
    started, events = time.monotonic(), []
    try:
        gevent.sleep(options.chaos_after)
        replica_back = kill_and_wait_for_restart(options.cluster_state, "daphne-2", events, started)
        gevent.sleep(options.chaos_after)
        redis_back = kill_and_wait_for_restart(options.cluster_state, "redis", events, started)
        return {"done": replica_back and redis_back, "events": events}
    except Exception as error:  # reported in the verdict rather than lost in a greenlet
        events.append(f"chaos failed: {error}")
        return {"done": False, "events": events}
