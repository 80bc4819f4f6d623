"""The task queue: django-q2's Q_CLUSTER, and which broker carries its messages.

The database is the broker by default (nothing else to run), Redis when REDIS_URL is set.
On PostgreSQL the database broker is woken by LISTEN/NOTIFY (config/broker.py) instead of
polling. The periodic tasks themselves are declared in framework/schedules.py.
"""

from config.env import env_bool, env_float, env_int, env_secret, env_str

from .base import VAR_DIR
from .database import DATABASES

REDIS_URL = env_secret("REDIS_URL")
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "orders"),
    "workers": env_int("Q_WORKERS", 2),
    # The sale's steps retry with backoff inside one task, so a task may take a while;
    # `retry` must exceed `timeout` or a slow task would be handed to a second worker.
    "timeout": env_int("Q_TIMEOUT", 120),
    "retry": env_int("Q_RETRY", 180),
    # A message that keeps failing is dropped after a few tries; the order row stays the
    # truth and the sweeper re-drives it, so nothing loops forever and nothing is lost.
    "max_attempts": 3,
    "ack_failures": True,
    # Successful tasks are not kept: each order's OrderEvent history is the execution record,
    # and keeping the last 250 made the monitor reload those rows after every task (a fifth
    # of the cluster's CPU, see BENCHMARKS.md). Failed tasks are still saved.
    "save_limit": env_int("Q_SAVE_LIMIT", -1),
    "catch_up": False,
    "poll": env_float("Q_POLL", "0.05"),
    "guard_cycle": 0.5,
    "sync": env_bool("Q_SYNC", False),
    "label": "Task queue",
}
# The cluster's liveness (framework/cluster.py, `manage.py cluster_alive`): a worker touches
# the file every CLUSTER_HEARTBEAT_SECONDS; the probe fails when it is CLUSTER_HEARTBEAT_MAX_AGE_SECONDS old.
CLUSTER_HEARTBEAT_FILE = env_str("CLUSTER_HEARTBEAT_FILE", str(VAR_DIR / "cluster-heartbeat"))
CLUSTER_HEARTBEAT_SECONDS = env_float("CLUSTER_HEARTBEAT_SECONDS", "10")
CLUSTER_HEARTBEAT_MAX_AGE_SECONDS = env_float("CLUSTER_HEARTBEAT_MAX_AGE_SECONDS", "60")
# Every broker class of config/broker.py runs the pipeline tick in its cluster's pusher.
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    Q_CLUSTER["broker_class"] = "config.broker.TickingRedisBroker"
else:
    Q_CLUSTER["orm"] = "default"
    # Each cluster reports its status (its heartbeat, every guard cycle, kept 3 s) to a cache;
    # on the database broker that cache must be shared by every process, or the web process
    # (/health/ready, the monitoring page) never sees a cluster: the "queue_status" cache of
    # cache.py, whose table is made by migrate (monitoring/migrations/0001).
    Q_CLUSTER["cache"] = "queue_status"
    Q_CLUSTER["broker_class"] = "config.broker.TickingOrmBroker"
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Woken by LISTEN/NOTIFY rather than polling: no poll interval between two steps.
        Q_CLUSTER["broker_class"] = "config.broker.PostgresOrmBroker"
