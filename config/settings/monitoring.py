"""Watching the pipeline: the limits behind /health/ready and the alarm rules, and who the
alarms wake.

Every alarm rule (monitoring/alarms.py) takes its threshold from here; an alarm emails
the users of the "Order manager" group and ALARM_EMAILS, once per firing (none again
within ALARM_COOLDOWN_SECONDS of the rule's last email), and again when it resolves.
"""

from config.env import env_float, env_int, env_list

# An order in a non-final state untouched for longer is over its time limit: /health/ready
# fails and the stuck-order alarm fires. Above PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS (900),
# which an order may legitimately spend waiting for the shopper's 3-D Secure.
ORDER_TIME_LIMIT_SECONDS = env_int("ORDER_TIME_LIMIT_SECONDS", 1200)

# Who an alarm emails besides the order managers, and how often at most per rule.
ALARM_EMAILS = env_list("ALARM_EMAILS", "")
ALARM_COOLDOWN_SECONDS = env_int("ALARM_COOLDOWN_SECONDS", 1800)

# Rule thresholds.
ALARM_FAILURE_RATE = env_float("ALARM_FAILURE_RATE", "0.2")  # share of orders ending FAILED
ALARM_FAILURE_RATE_WINDOW_SECONDS = env_int("ALARM_FAILURE_RATE_WINDOW_SECONDS", 300)
ALARM_FAILURE_RATE_MIN_ORDERS = env_int("ALARM_FAILURE_RATE_MIN_ORDERS", 10)  # fewer ends: no verdict
ALARM_QUEUE_AGE_SECONDS = env_int("ALARM_QUEUE_AGE_SECONDS", 120)
ALARM_MIN_CLUSTERS = env_int("ALARM_MIN_CLUSTERS", 1)
# A partner's webhook endpoint failing this long (or switched off for failing) fires its alarm.
ALARM_WEBHOOK_ENDPOINT_FAILING_SECONDS = env_int("ALARM_WEBHOOK_ENDPOINT_FAILING_SECONDS", 900)
ALARM_WEBHOOK_AGE_SECONDS = env_int("ALARM_WEBHOOK_AGE_SECONDS", 300)  # a Stripe event unprocessed this long
# How long the simulated gateway holds an authorisation, and the hold assumed for a payment whose
# provider gave no end (Stripe gives capture_before on the charge). The home tile, the order
# filter and the alarm count an uncaptured hold lapsing within ALARM_AUTHORIZATION_EXPIRY_HOURS.
PAYMENT_AUTHORIZATION_DAYS = env_int("PAYMENT_AUTHORIZATION_DAYS", 7)
ALARM_AUTHORIZATION_EXPIRY_HOURS = env_int("ALARM_AUTHORIZATION_EXPIRY_HOURS", 24)
ALARM_RECONCILER_WINDOW_HOURS = env_int("ALARM_RECONCILER_WINDOW_HOURS", 48)
