"""Outbound webhooks (docs/webhooks.md): where they may go, how long a receiver may take,
how they are retried, and when a failing endpoint is given up on."""

from config.env import env_bool, env_float, env_int

# Off, an endpoint on a private, loopback, link-local or otherwise non-public address is
# refused when it is saved and again at every send (SSRF). On only for tests and a lab.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env_bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False)
# A receiver gets this long to accept the connection, and this long between bytes of its answer.
WEBHOOK_CONNECT_TIMEOUT_SECONDS = env_float("WEBHOOK_CONNECT_TIMEOUT_SECONDS", "3")
WEBHOOK_READ_TIMEOUT_SECONDS = env_float("WEBHOOK_READ_TIMEOUT_SECONDS", "5")
# After each failure in a row an endpoint waits twice as long, from this to the maximum.
WEBHOOK_BACKOFF_SECONDS = env_float("WEBHOOK_BACKOFF_SECONDS", "10")
WEBHOOK_BACKOFF_MAX_SECONDS = env_float("WEBHOOK_BACKOFF_MAX_SECONDS", "3600")
# An event not delivered this long after it happened is given up on (failed, redeliverable
# in the admin); an endpoint failing this long is disabled and the managers are emailed.
WEBHOOK_RETRY_SECONDS = env_int("WEBHOOK_RETRY_SECONDS", 24 * 3600)
WEBHOOK_DISABLE_AFTER_SECONDS = env_int("WEBHOOK_DISABLE_AFTER_SECONDS", 24 * 3600)
# One delivery task sends to one endpoint for at most this long, then lets others have the worker.
WEBHOOK_TASK_SECONDS = env_float("WEBHOOK_TASK_SECONDS", "15")
# A delivery task's claim on its endpoint: a killed worker's endpoint is taken up again after it.
WEBHOOK_LEASE_SECONDS = env_float("WEBHOOK_LEASE_SECONDS", "60")
# How long a process trusts what it read of which event types have an endpoint (one read per
# period instead of one per fact); an endpoint saved in this process is seen at once.
WEBHOOK_SUBSCRIPTIONS_SECONDS = env_float("WEBHOOK_SUBSCRIPTIONS_SECONDS", "2")
