"""Settings for the order-processing back office, assembled from one module per concern.

Every setting comes from the environment (read through config/env.py); each has an embedded
default that needs no server (SQLite, the ORM task broker, local receipt files, the
simulated payment gateway, the console email backend), so `make run` works on a bare
laptop. docs/configuration.md lists every variable.

DJANGO_SETTINGS_MODULE stays `config.settings`: this package is that module. The order
below is the order of evaluation; a module that needs another's value imports it from
there (security, database, storage and notifications read VAR_DIR from base; queue reads
the database engine), and the fail-closed checks run in the order they always have:
the secret key before the payment keys. payments reads DEBUG from security and the
reservation hold from shop; cache reads REDIS_URL from queue.

    base           the project: paths, apps, middleware, templates, language and time, static files
    security       debug, the secret key, allowed hosts and CSRF origins
    database       DATABASES (SQLite by default, DATABASE_URL otherwise)
    storage        STORAGES: private receipts (local or S3), media, static
    shop           the shop's identity, its public address, order limits, pipeline timings
    notifications  email (console or SMTP) and the optional SNS topic
    payments       the gateway, Stripe's keys and limits, 3-D Secure and reconciler timings
    queue          django-q2's Q_CLUSTER and its broker
    monitoring     the health limits, the alarm thresholds and who alarms email
    cache          the shared cache the rate limits count in (the database, or Redis)
    api            REST framework and the OpenAPI schema
    logging        LOGGING: plain text or JSON lines (LOG_FORMAT)
    metrics        Prometheus: the multiprocess folder, the token of /metrics
    webhooks       outbound webhooks: allowed addresses, timeouts, backoff, giving up
"""

# The order is the order of evaluation (see above), not the alphabet.
# isort: off
from .base import *  # noqa: F403
from .security import *  # noqa: F403
from .database import *  # noqa: F403
from .storage import *  # noqa: F403
from .shop import *  # noqa: F403
from .notifications import *  # noqa: F403
from .payments import *  # noqa: F403
from .queue import *  # noqa: F403
from .monitoring import *  # noqa: F403
from .cache import *  # noqa: F403
from .api import *  # noqa: F403
from .logging import *  # noqa: F403
from .metrics import *  # noqa: F403
from .webhooks import *  # noqa: F403
# isort: on
