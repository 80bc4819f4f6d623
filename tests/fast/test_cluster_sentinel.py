"""The cluster's sentinel (framework/cluster.py) once it has replaced its task queue."""

import multiprocessing
import signal

import pytest

from framework.cluster import RecoveringSentinel


@pytest.fixture
def sentinel(transactional_db):
    # The sentinel takes over SIGINT and SIGTERM as it would in its own process: give them back.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield RecoveringSentinel(multiprocessing.Event(), multiprocessing.Event(), "0" * 32, start=False)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_a_dead_worker_of_a_pool_already_replaced_is_left_to_its_retirement(sentinel):
    # The guard loop goes on through the old pool's list after a replacement: one of those
    # workers found dead must not be reincarnated again (it is in no pool: that crashed the sentinel).
    retired = multiprocessing.get_context("fork").Process(target=lambda: None)
    retired.start()
    retired.join()
    sentinel.pool = []

    sentinel.reincarnate(retired)

    assert sentinel.pool == [] and sentinel.reincarnations == 0
