"""Telling people about orders: email to the shopper, and optionally an SNS topic.

Email goes over SMTP when EMAIL_HOST is set (Django's own variable names), to the console
otherwise, so a laptop needs no mail server.
"""

from config.env import env_bool, env_int, env_secret, env_str

from .base import VAR_DIR

EMAIL_HOST = env_str("EMAIL_HOST")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
    EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(VAR_DIR / "emails"))
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "orders@shop.example")
# How long a claimed email send may take before another worker may try it again.
NOTIFICATION_CLAIM_SECONDS = env_int("NOTIFICATION_CLAIM_SECONDS", 120)

# At most this many "could not process your order" emails to one address an hour (the rest are not sent).
FAILURE_EMAILS_PER_ADDRESS_PER_HOUR = env_int("FAILURE_EMAILS_PER_ADDRESS_PER_HOUR", 3)

# Optional: every final order state is also published to this SNS topic (credentials from
# the usual AWS variables; the region from the topic's ARN; the endpoint overridable).
NOTIFY_SNS_TOPIC_ARN = env_str("NOTIFY_SNS_TOPIC_ARN")
AWS_SNS_ENDPOINT_URL = env_str("AWS_SNS_ENDPOINT_URL")
