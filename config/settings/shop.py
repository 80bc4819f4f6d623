"""The shop and its orders: the identity printed on receipts and emails, the public address
links point to, the limits of one order, and the pipeline's timings.
"""

from config.env import env_decimal, env_float, env_int, env_list, env_str

# Shop identity printed on receipts and emails.
SHOP_NAME = env_str("SHOP_NAME", "Demo Shop")
SHOP_ADDRESS = env_str("SHOP_ADDRESS", "1 Market Street, Springfield")
SHOP_TAX_ID = env_str("SHOP_TAX_ID", "VAT 000000000")
SHOP_TAX_RATE = env_decimal("SHOP_TAX_RATE", "0")
# The currencies products may be priced in (ISO 4217 codes, comma-separated); unset, any
# ISO 4217 currency (inventory/catalog_rules.py).
SHOP_CURRENCIES = tuple(code.strip().upper() for code in env_list("SHOP_CURRENCIES", "") if code.strip())
# Absolute base of links put in emails (the receipt link); the request's host when serving.
# Unset, the address `make run` serves on, which follows PORT.
PUBLIC_BASE_URL = (env_str("PUBLIC_BASE_URL") or "http://127.0.0.1:" + (env_str("PORT") or "8000")).rstrip("/")

# Limits on one order, refused with a 400 beyond them.
ORDER_MAX_LINES = env_int("ORDER_MAX_LINES", 100)
ORDER_MAX_QUANTITY = env_int("ORDER_MAX_QUANTITY", 1000)
ORDER_MAX_UNITS = env_int("ORDER_MAX_UNITS", 100)  # all lines together
# An unpaid order (VALIDATED: stock reserved, payment not yet authorised, e.g. waiting for
# 3-D Secure) holds its stock this long, then ends PAYMENT_FAILED and the stock is on sale
# again; the release pass runs every minute, so a hold lasts at most this plus a minute.
RESERVATION_HOLD_SECONDS = env_int("RESERVATION_HOLD_SECONDS", 300)
# Units one client (an address, or an email) may hold in unpaid orders at once; beyond it a
# new order is refused (429) until those are paid or released.
HELD_UNITS_PER_CLIENT = env_int("HELD_UNITS_PER_CLIENT", 100)
# The share of a product's units for sale one client may hold unpaid (at least one unit):
# beyond it a new order is refused (409), so one anonymous order cannot take a product off
# sale for RESERVATION_HOLD_SECONDS (OWASP OAT-021, denial of inventory). 1: no cap.
SHOP_MAX_UNPAID_SHARE = env_float("SHOP_MAX_UNPAID_SHARE", "0.5")
# A client whose unpaid order lapsed may hold again only after this many seconds, doubled
# with each further lapse (429 meanwhile); the count is forgotten after twice the wait.
SHOP_HOLD_LAPSE_WAIT_SECONDS = env_int("SHOP_HOLD_LAPSE_WAIT_SECONDS", 60)
# How long an order may sit in a non-final state before the minute sweeper (the backstop)
# re-drives it, flagged or not.
ORDER_STUCK_AFTER_SECONDS = env_int("ORDER_STUCK_AFTER_SECONDS", 60)
# Every cluster runs the pipeline tick this often (one of them acts each time): it queues due
# retries and nudges orders whose message was lost (orders/recovery.py). 0: no tick.
PIPELINE_TICK_SECONDS = env_float("PIPELINE_TICK_SECONDS", "1")
# An open order untouched this long that no worker holds and no retry waits for is nudged
# (its message was lost); a longer queue backlog adds its age.
ORDER_NUDGE_AFTER_SECONDS = env_float("ORDER_NUDGE_AFTER_SECONDS", "5")
# The scheduled invariant audit reads the orders touched this recently (`audit_invariants --all`: every order).
AUDIT_WINDOW_HOURS = env_int("AUDIT_WINDOW_HOURS", 24)
# Multiplies every retry backoff of the pipeline (tests shrink it; 1 in production).
PIPELINE_BACKOFF_SCALE = env_float("PIPELINE_BACKOFF_SCALE", "1")
# How many days after it failed a manager may still redrive a FAILED order (docs/REDRIVE.md).
ORDER_REDRIVE_DAYS = env_int("ORDER_REDRIVE_DAYS", 14)
# How many orders one click of a bulk retry or redrive acts on at most.
ORDER_BULK_ACTION_CAP = env_int("ORDER_BULK_ACTION_CAP", 50)
# How long a shopper's personal data (email address, client address) is kept after an order
# ends; then the "anonymise expired shopper data" schedule erases it (orders/erasure.py),
# keeping amounts, lines, receipt numbers and the ledger. docs/compliance.md.
SHOPPER_DATA_RETENTION_DAYS = env_int("SHOPPER_DATA_RETENTION_DAYS", 730)
# Circuit breakers around the providers the pipeline calls (framework/breakers.py): a
# provider's breaker opens once, within BREAKER_WINDOW_SECONDS, at least BREAKER_FAILURES of
# its calls failed AND they were at least BREAKER_FAILURE_RATIO of its calls; after
# BREAKER_COOL_DOWN_SECONDS one call goes through as a probe, and its success closes it.
# Fewer failures than a payment step's attempts (4), so that one order alone in an outage opens it.
BREAKER_FAILURES = env_int("BREAKER_FAILURES", 3)
BREAKER_FAILURE_RATIO = env_float("BREAKER_FAILURE_RATIO", "0.5")
BREAKER_WINDOW_SECONDS = env_float("BREAKER_WINDOW_SECONDS", "30")
BREAKER_COOL_DOWN_SECONDS = env_float("BREAKER_COOL_DOWN_SECONDS", "10")
# How often an order whose step waits (a hold, an open breaker) looks again; releasing a
# hold or closing a breaker brings every waiting step forward at once.
STEP_WAIT_RECHECK_SECONDS = env_float("STEP_WAIT_RECHECK_SECONDS", "5")
