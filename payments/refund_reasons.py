"""The list of refund reasons: seeded once, then kept by managers in the admin.

Every refund names one (`payments.refunds.request_refund` refuses a refund without an active
one). A refund made in Stripe's dashboard is filed under the reason Stripe gives, mapped
here, or under "other".
"""

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Q

from payments.models import OTHER_REASON, RefundReason

# code, label, whether the shopper sees it (in the refund email and on the credit note).
SEEDED_REASONS: tuple[tuple[str, str, bool], ...] = (
    ("damaged", "Damaged", True),
    ("wrong_item", "Wrong item", True),
    ("not_delivered", "Not delivered", True),
    ("goodwill", "Goodwill", True),
    ("duplicate_charge", "Duplicate charge", True),
    ("fraud", "Fraud", False),
    (OTHER_REASON, "Other", False),
)

# Stripe's refund `reason` values, as the shop files them.
STRIPE_REASONS = {"duplicate": "duplicate_charge", "fraudulent": "fraud", "requested_by_customer": "goodwill"}


class UnknownRefundReason(ValueError):
    """The reason named is not on the list, or no longer offered."""


def seed_refund_reasons(*, using: str = DEFAULT_DB_ALIAS, **signal_arguments) -> None:
    """Put back any seeded reason that is missing (after a migrate or a flush); edits are kept."""
    if RefundReason._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated to a point before the list existed
    for position, (code, label, shown) in enumerate(SEEDED_REASONS):
        RefundReason.objects.using(using).get_or_create(
            code=code, defaults={"label": label, "show_to_shopper": shown, "position": position}
        )


def active_reasons() -> list[RefundReason]:
    """The reasons a manager may choose, in the list's order."""
    return list(RefundReason.objects.filter(active=True))


def reason_named(code: str) -> RefundReason:
    """The active reason with this code; raises `UnknownRefundReason` otherwise."""
    reason = RefundReason.objects.filter(Q(code=code), active=True).first() if code else None
    if reason is None:
        raise UnknownRefundReason(f"Choose a refund reason from the list ({code or 'none given'} is not on it).")
    return reason


def reason_from_stripe(stripe_reason: str | None) -> RefundReason:
    """The shop's reason for a refund Stripe reports with `stripe_reason` (None: "other")."""
    code = STRIPE_REASONS.get(stripe_reason or "", OTHER_REASON)
    seed_refund_reasons()  # "other" is always there to file under
    return RefundReason.objects.get(code=code)
