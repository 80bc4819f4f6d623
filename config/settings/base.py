"""The Django project itself: where it lives on disk, its apps, middleware, templates,
language and time, and static files.

These hold for every install; the other modules of this package each own one integration
that the environment switches or tunes.
"""

from pathlib import Path

from config.env import env_str

# config/settings/base.py -> the project's root.
BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Where the embedded defaults keep their files (SQLite, the secret key, receipts, emails),
# outside the source tree's tracked files.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

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
    "framework",  # before django_q: its qcluster command (framework/cluster.py) is the one that runs
    "django_q",
    "axes",
    "csp",
    # The staff activity log (framework/activity.py): values before and after, who, when.
    "auditlog",
    # Two factors for staff who move money (staff/two_factor.py): authenticator apps, recovery codes.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "inventory",
    "orders",
    "payments",
    "receipts",
    "monitoring",
    "staff",
    "backoffice",
    "partners",
    "webhooks",
]

MIDDLEWARE = [
    "config.request_id.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "config.request_limits.limit_api_body_size",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names the logged-in staff member on every activity log entry the request writes
    # (django-auditlog's, on requests with the session cookie only).
    "framework.activity.StaffActivityMiddleware",
    # request.user.is_verified(): whether this session passed the second factor; then the gate
    # that sends staff who move money to it.
    "django_otp.middleware.OTPMiddleware",
    "staff.two_factor_views.RequireSecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "framework.middleware.DatabaseUnavailableMiddleware",
    # django-csp's, with the settings' policy built once per process.
    "framework.content_security_policy.CSPMiddleware",
    # Last, as django-axes asks: it answers a locked-out login itself.
    "axes.middleware.AxesMiddleware",
]

# django-axes first: it counts failed logins and refuses locked-out clients before the
# password is checked (settings in security.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
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
                "framework.context_processors.admin_site_names",
            ],
        },
    },
]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's full set: not like the user's own details, at least 12 characters, not one of the
# 20,000 commonest passwords, not all digits.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# The shop page's build (`npm run build`), served when it has been built.
STATICFILES_DIRS = [p for p in [BASE_DIR / "frontend" / "dist"] if p.exists()]
# Vite names the page's assets with a content hash (assets/index-1a2B3c4D.js): cache them for good.
WHITENOISE_IMMUTABLE_FILE_TEST = r"^.+[.-][0-9a-zA-Z_-]{8,12}\.\w+$"
