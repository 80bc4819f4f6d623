"""Prometheus metrics: where the processes keep their counts, and who may read them.

prometheus_client decides at import whether it runs in multiprocess mode, from the
PROMETHEUS_MULTIPROC_DIR variable. The settings are loaded before any app, so they set it
here (VAR_DIR/metrics by default): every process of the shop on this machine, the web
server's workers and the cluster's, then writes its counts into one folder that `/metrics`
sums. gunicorn.conf.py removes the files of dead processes when the web server starts.

`/metrics` wants `Authorization: Bearer $METRICS_TOKEN`. With no token set it is open only
in debug mode (`make run` on a laptop); with debug off and no token it refuses everyone.
"""

import os
from pathlib import Path

from config.env import env_bool, env_secret, env_str

from .base import VAR_DIR

METRICS_DIR = Path(env_str("PROMETHEUS_MULTIPROC_DIR") or str(VAR_DIR / "metrics"))
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)

METRICS_TOKEN = env_secret("METRICS_TOKEN", "")
# Off: nothing is recorded and /metrics is not found (framework/metrics.py).
METRICS_ENABLED = env_bool("METRICS_ENABLED", True)
