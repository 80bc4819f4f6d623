"""Settings for the order-processing back office.

Every setting comes from the environment; each has an embedded default that needs no
server (SQLite, the ORM task broker, local receipt files, the simulated payment gateway,
the console email backend), so `make run` works on a bare laptop. The README lists every
variable.
"""

import os
import secrets
from decimal import Decimal
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _secret_key() -> str:
    """The signing key: from the environment, else one kept in var/ so links survive restarts."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off.")
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
    return key_file.read_text().strip()


DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "inventory",
    "orders",
    "payments",
    "receipts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite is the embedded default; DATABASE_URL switches to PostgreSQL.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the cluster share one file: wait for locks rather than fail,
    # and take the write lock at BEGIN so concurrent writers queue instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STATICFILES_DIRS = [p for p in [BASE_DIR / "frontend" / "dist"] if p.exists()]
# Vite names the page's assets with a content hash (assets/index-1a2B3c4D.js): cache them for good.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^.+[.-][0-9a-zA-Z_-]{8,12}\.\w+$"

# Receipts are private: with a bucket they go to S3 (django-storages' own variable names),
# otherwise to local files outside any public URL, downloaded through signed links.
def receipt_storage_from_env(environ) -> dict:
    """The STORAGES entry of receipts for these environment variables."""
    if bucket := environ.get("AWS_STORAGE_BUCKET_NAME", ""):
        return {
            "BACKEND": "receipts.storage.ReceiptS3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": environ.get("AWS_S3_ENDPOINT_URL") or None,
                "region_name": environ.get("AWS_S3_REGION_NAME") or None,
                "access_key": environ.get("AWS_ACCESS_KEY_ID") or None,
                "secret_key": environ.get("AWS_SECRET_ACCESS_KEY") or None,
                "addressing_style": environ.get("AWS_S3_ADDRESSING_STYLE") or None,
                "default_acl": "private",
                "querystring_auth": True,
                "file_overwrite": False,
                "signature_version": "s3v4",
                "querystring_expire": int(environ.get("RECEIPT_LINK_TTL_SECONDS") or 300),
            },
        }
    return {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "private")},
    }


AWS_STORAGE_BUCKET_NAME = os.environ.get("AWS_STORAGE_BUCKET_NAME", "")
RECEIPT_STORAGE = receipt_storage_from_env(os.environ)
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "receipts": RECEIPT_STORAGE,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
RECEIPT_LINK_TTL_SECONDS = env_int("RECEIPT_LINK_TTL_SECONDS", 300)

# Shop identity printed on receipts and emails.
SHOP_NAME = os.environ.get("SHOP_NAME", "Demo Shop")
SHOP_ADDRESS = os.environ.get("SHOP_ADDRESS", "1 Market Street, Springfield")
SHOP_TAX_ID = os.environ.get("SHOP_TAX_ID", "VAT 000000000")
SHOP_TAX_RATE = Decimal(os.environ.get("SHOP_TAX_RATE", "0"))
# Absolute base of links put in emails (the receipt link); the request's host when serving.
# Unset, the address `make run` serves on, which follows PORT.
PUBLIC_BASE_URL = (
    os.environ.get("PUBLIC_BASE_URL") or "http://127.0.0.1:" + (os.environ.get("PORT") or "8000")
).rstrip("/")

# Email: SMTP when EMAIL_HOST is set (Django's own variable names), the console otherwise.
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "emails"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "orders@shop.example")

# Optional: every final order state is also published to this SNS topic (credentials from
# the usual AWS variables; the region from the topic's ARN; the endpoint overridable).
NOTIFY_SNS_TOPIC_ARN = os.environ.get("NOTIFY_SNS_TOPIC_ARN", "")
AWS_SNS_ENDPOINT_URL = os.environ.get("AWS_SNS_ENDPOINT_URL", "")

# Payments: the simulated gateway by default; `stripe` needs its keys.
PAYMENT_GATEWAY = os.environ.get("PAYMENT_GATEWAY", "simulated")
STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "")  # empty: Stripe's own API
STRIPE_TIMEOUT_SECONDS = float(os.environ.get("STRIPE_TIMEOUT_SECONDS", "20"))
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
if PAYMENT_GATEWAY == "stripe":
    # Refuse to start rather than take orders whose payments can only fail.
    if not STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
        raise ImproperlyConfigured(
            "PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY set to a secret key (sk_test_... or sk_live_...)."
        )
    if not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
        raise ImproperlyConfigured(
            "PAYMENT_GATEWAY=stripe needs STRIPE_WEBHOOK_SECRET set to the endpoint's signing secret (whsec_...)."
        )
# How long an order waits for the shopper to authenticate (3-D Secure) before it ends PAYMENT_FAILED.
PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS = env_int("PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS", 900)
# The reconciler compares payments touched in this many hours, of orders untouched for this many seconds.
PAYMENT_RECONCILE_HOURS = env_int("PAYMENT_RECONCILE_HOURS", 48)
PAYMENT_RECONCILE_AFTER_SECONDS = env_int("PAYMENT_RECONCILE_AFTER_SECONDS", 600)

# Task broker: the ORM (the database) by default, Redis when REDIS_URL is set.
REDIS_URL = os.environ.get("REDIS_URL", "")
Q_CLUSTER = {
    "name": os.environ.get("Q_CLUSTER_NAME", "orders"),
    "workers": env_int("Q_WORKERS", 2),
    # A step's own retries (with backoff) run inside one task, so a task may take a while;
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
    "poll": float(os.environ.get("Q_POLL", "0.05")),
    "guard_cycle": 0.5,
    "sync": env_bool("Q_SYNC", False),
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Woken by LISTEN/NOTIFY rather than polling: no poll interval between two steps.
        Q_CLUSTER["broker_class"] = "config.broker.PostgresOrmBroker"

# How long an order may sit in a non-final state before the sweeper re-drives it.
ORDER_STUCK_AFTER_SECONDS = env_int("ORDER_STUCK_AFTER_SECONDS", 60)
# Limits on one order, refused with a 400 beyond them.
ORDER_MAX_LINES = env_int("ORDER_MAX_LINES", 100)
ORDER_MAX_QUANTITY = env_int("ORDER_MAX_QUANTITY", 1000)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Order processing API",
    "DESCRIPTION": "Place orders, follow them through the pipeline, download receipts.",
    "VERSION": "1.0.0",
    # Swagger UI from the installed package, not a CDN: the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# Multiplies every retry backoff of the pipeline (tests shrink it; 1 in production).
PIPELINE_BACKOFF_SCALE = float(os.environ.get("PIPELINE_BACKOFF_SCALE", "1"))
# How long a claimed email send may take before another worker may try it again.
NOTIFICATION_CLAIM_SECONDS = env_int("NOTIFICATION_CLAIM_SECONDS", 120)
