"""The cluster's liveness probe (`manage.py cluster_alive`) passes while its workers take
tasks, and fails when the cluster is stuck (its workers stopped where they stood) or gone."""

import os
import signal
import subprocess

from tests.support.processes import PROJECT_DIR, PYTHON
from tests.support.waiting import wait_until

BEAT = {"CLUSTER_HEARTBEAT_SECONDS": "0.2", "CLUSTER_HEARTBEAT_MAX_AGE_SECONDS": "2"}


def probe(shop, heartbeat) -> subprocess.CompletedProcess:
    """`manage.py cluster_alive` as the container's healthcheck runs it."""
    env = shop.env(CLUSTER_HEARTBEAT_FILE=str(heartbeat), **BEAT)
    return subprocess.run(
        [PYTHON, "manage.py", "cluster_alive"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_probe_fails_before_the_cluster_has_ever_beaten(shop, tmp_path):
    result = probe(shop, tmp_path / "heartbeat")

    assert result.returncode == 1
    assert f"no cluster heartbeat at {tmp_path / 'heartbeat'}" in result.stderr


def test_the_probe_passes_while_the_workers_take_tasks_and_fails_once_they_are_stuck(shop, tmp_path):
    heartbeat = tmp_path / "heartbeat"
    cluster = shop.start_cluster(CLUSTER_HEARTBEAT_FILE=str(heartbeat), **BEAT)
    alive = wait_until(lambda: probe(shop, heartbeat).returncode == 0 or None, timeout=30, message=shop.logs)
    assert alive

    workers = cluster.cluster_workers()
    for pid in workers:  # stuck: alive, holding what they hold, taking nothing
        os.kill(pid, signal.SIGSTOP)
    try:
        stuck = wait_until(lambda: (r := probe(shop, heartbeat)).returncode == 1 and r, timeout=30, message=shop.logs)
        assert "stuck or stopped" in stuck.stderr
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)

    wait_until(lambda: probe(shop, heartbeat).returncode == 0, timeout=30, message=shop.logs)


def test_the_probe_fails_once_the_cluster_has_stopped(shop, tmp_path):
    heartbeat = tmp_path / "heartbeat"
    cluster = shop.start_cluster(CLUSTER_HEARTBEAT_FILE=str(heartbeat), **BEAT)
    wait_until(lambda: probe(shop, heartbeat).returncode == 0, timeout=30, message=shop.logs)

    cluster.stop()

    result = wait_until(lambda: (r := probe(shop, heartbeat)).returncode == 1 and r, timeout=30, message=shop.logs)
    assert "heartbeat is" in result.stderr and "old (limit 2 s)" in result.stderr


def test_heartbeats_leave_no_task_rows(shop, tmp_path):
    from django_q.models import Task

    heartbeat = tmp_path / "heartbeat"
    shop.start_cluster(CLUSTER_HEARTBEAT_FILE=str(heartbeat), **BEAT)
    first = wait_until(lambda: heartbeat.exists() and heartbeat.stat().st_mtime, timeout=30, message=shop.logs)
    wait_until(lambda: heartbeat.stat().st_mtime > first, timeout=30, message=shop.logs)

    assert Task.objects.count() == 0
