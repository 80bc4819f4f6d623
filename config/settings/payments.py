"""Payments: which gateway takes them, Stripe's keys and limits, and the timings of
3-D Secure and of the reconciler.

Fail-closed: with DJANGO_DEBUG off the gateway must be named (PAYMENT_GATEWAY), so a
production install that forgot it refuses to start instead of "taking" payments with the
simulated gateway, which moves no money; and PAYMENT_GATEWAY=stripe without keys of the
right kind refuses to start rather than take orders whose payments can only fail. The
simulated gateway is the default only in debug mode (the laptop's `make run`).
"""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_secret, env_str

from .security import DEBUG
from .shop import RESERVATION_HOLD_SECONDS

GATEWAYS = ("simulated", "stripe")
PAYMENT_GATEWAY = env_str("PAYMENT_GATEWAY", "simulated" if DEBUG else "")
if not PAYMENT_GATEWAY:
    raise ImproperlyConfigured(
        "PAYMENT_GATEWAY must be set when DJANGO_DEBUG is off: 'stripe' to take real payments, "
        "or 'simulated' for a demo that moves no money."
    )
if PAYMENT_GATEWAY not in GATEWAYS:
    raise ImproperlyConfigured(f"Unknown PAYMENT_GATEWAY {PAYMENT_GATEWAY!r}: use 'simulated' or 'stripe'.")
# The simulated gateway's fault ids (`pm_sim_hang`, `pm_sim_timeout`, ...) let tests and demos
# provoke a provider's failures; left open, anyone could stall the workers with them. They
# work in debug mode, or where this is switched on; otherwise they decline like an unknown card.
PAYMENT_SIMULATED_FAULTS = env_bool("PAYMENT_SIMULATED_FAULTS", DEBUG)
# The simulated gateway's outage: while on, the calls for an order paying with
# `pm_sim_unavailable` fail transiently for SIMULATED_GATEWAY_OUTAGE_SECONDS from its first
# call (0: the outage never ends), then the provider is back and a redrive of it authorises.
SIMULATED_GATEWAY_OUTAGE = env_bool("SIMULATED_GATEWAY_OUTAGE", True)
SIMULATED_GATEWAY_OUTAGE_SECONDS = env_int("SIMULATED_GATEWAY_OUTAGE_SECONDS", 60)
# An order still in PAID whose card hold lapses within AUTHORIZATION_LAPSE_ACT_HOURS is settled
# by the lapse policy (orders/lapsing_holds.py, each quarter hour): "capture" takes the payment
# when the order may move on (else voids), "void" releases it; either way the shopper is emailed.
AUTHORIZATION_LAPSE_POLICIES = ("capture", "void")
AUTHORIZATION_LAPSE_POLICY = env_str("AUTHORIZATION_LAPSE_POLICY", "capture")
if AUTHORIZATION_LAPSE_POLICY not in AUTHORIZATION_LAPSE_POLICIES:
    raise ImproperlyConfigured(
        f"Unknown AUTHORIZATION_LAPSE_POLICY {AUTHORIZATION_LAPSE_POLICY!r}: use 'capture' or 'void'."
    )
AUTHORIZATION_LAPSE_ACT_HOURS = env_int("AUTHORIZATION_LAPSE_ACT_HOURS", 36)
STRIPE_SECRET_KEY = env_secret("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_secret("STRIPE_WEBHOOK_SECRET")
# The key the shop page's Stripe.js uses to collect cards (pk_test_... or pk_live_...); public by design.
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")  # empty: Stripe's own API
STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", "20")
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
if PAYMENT_GATEWAY == "stripe":
    # Refuse to start rather than take orders whose payments can only fail.
    if not STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
        raise ImproperlyConfigured(
            "PAYMENT_GATEWAY=stripe needs STRIPE_SECRET_KEY set to a secret key (sk_test_... or sk_live_...)."
        )
    if STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_")) and not STRIPE_PUBLISHABLE_KEY.startswith("pk_live_"):
        raise ImproperlyConfigured(
            "A live STRIPE_SECRET_KEY needs STRIPE_PUBLISHABLE_KEY set to the live publishable key (pk_live_...): "
            "without it the shop page cannot take cards."
        )
    if STRIPE_PUBLISHABLE_KEY and not STRIPE_PUBLISHABLE_KEY.startswith(("pk_test_", "pk_live_")):
        raise ImproperlyConfigured("STRIPE_PUBLISHABLE_KEY must be a publishable key (pk_test_... or pk_live_...).")
    if not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
        raise ImproperlyConfigured(
            "PAYMENT_GATEWAY=stripe needs STRIPE_WEBHOOK_SECRET set to the endpoint's signing secret (whsec_...)."
        )
# How long an order waits for the shopper to authenticate (3-D Secure) before it ends PAYMENT_FAILED;
# by default the reservation's hold, which ends an unpaid order in any case (orders/reservations.py).
PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS = env_int("PAYMENT_AUTHENTICATION_TIMEOUT_SECONDS", RESERVATION_HOLD_SECONDS)
# The reconciler compares payments touched in this many hours, of orders untouched for this many seconds.
PAYMENT_RECONCILE_HOURS = env_int("PAYMENT_RECONCILE_HOURS", 48)
PAYMENT_RECONCILE_AFTER_SECONDS = env_int("PAYMENT_RECONCILE_AFTER_SECONDS", 600)
