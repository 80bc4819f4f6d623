"""Writes of the partner API: issue and revoke keys, note their use, adjust stock once per
idempotency key through the ledger the admin writes (inventory.services)."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from inventory.models import Product, Stock, StockMovement
from inventory.services import adjust_stock, set_stock_level
from partners.models import PartnerKey, PartnerStockAdjustment, Scope
from partners.selectors import adjustment_with_idempotency_key
from partners.tokens import hash_secret, new_token

# last_used_at is a hint to the minute, not a log: one write a minute per key at most, not one a request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedKey:
    key: PartnerKey
    token: str  # the whole key, shown once to whoever issued it and never again


def issue_partner_key(*, name: str, scopes: list[str], issued_by: User | None = None) -> IssuedKey:
    """A new key with these scopes. The token is returned here only: the row keeps its hash."""
    unknown = sorted(set(scopes) - set(Scope.values))
    if unknown:
        raise ValidationError({"scopes": [f"Unknown scope: {', '.join(unknown)}."]})
    if not scopes:
        raise ValidationError({"scopes": ["Choose at least one scope."]})
    if not name.strip():
        raise ValidationError({"name": ["Name the partner who uses the key."]})
    prefix, secret, token = new_token()
    key = PartnerKey.objects.create(
        name=name.strip(),
        prefix=prefix,
        secret_hash=hash_secret(secret),
        scopes=sorted(set(scopes)),
        created_by=issued_by,
    )
    return IssuedKey(key=key, token=token)


def revoke_partner_key(key: PartnerKey, *, revoked_by: User | None = None) -> bool:
    """Revoke the key: its next request is refused (401). False if it was revoked already."""
    revoked = PartnerKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_by=revoked_by
    )
    key.refresh_from_db(fields=["revoked_at", "revoked_by"])
    return bool(revoked)


def note_key_used(key: PartnerKey) -> None:
    """Record that the key was just used, unless that was recorded less than a minute ago
    (one conditional UPDATE, which writes nothing then)."""
    now = timezone.now()
    if key.last_used_at is not None and now - key.last_used_at < LAST_USED_RESOLUTION:
        return
    PartnerKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    key.last_used_at = now


class IdempotencyConflict(Exception):
    """The idempotency key was used before by this partner for a different adjustment."""


@dataclass(frozen=True)
class Adjustment:
    answer: dict[str, Any]
    created: bool  # False: a replay, answered with the first request's answer


def request_hash(**fields: object) -> str:
    """A fingerprint of an adjustment's body, so a replay can be told from a different request."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def adjust_stock_for_partner(
    *,
    key: PartnerKey,
    idempotency_key: str,
    sku: str,
    delta: int | None = None,
    on_hand: int | None = None,
    note: str = "",
) -> Adjustment:
    """Add `delta` units of a product (or bring it to a counted `on_hand`) as a partner, once
    per idempotency key: a replay returns the first answer and moves nothing.

    Goes through `inventory.services.adjust_stock`, the admin's path: the same row lock, the
    same ledger, the same refusal below reserved units (`StockAdjustmentError`). Raises
    `ValidationError` for an unknown product and `IdempotencyConflict` when the key was used
    for a different body.
    """
    fingerprint = request_hash(sku=sku, delta=delta, on_hand=on_hand, note=note)
    if existing := adjustment_with_idempotency_key(key, idempotency_key):
        return _replay(existing, fingerprint)
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise ValidationError({"sku": [f"Unknown product '{sku}'."]})
    submission = uuid.uuid4()
    # The ledger line names who made it (no staff account did): the key's name and prefix.
    ledger_note = f"Partner {key.name} (pk_{key.prefix}): {note}".strip().rstrip(":")
    try:
        with transaction.atomic():
            # First, before any stock is touched: a twin racing with the same key waits on this
            # row's unique index until the first commits, then fails and is answered below.
            record = PartnerStockAdjustment.objects.create(
                key=key, idempotency_key=idempotency_key, request_hash=fingerprint, product=product, answer={}
            )
            if on_hand is not None:
                stock = set_stock_level(
                    product=product,
                    on_hand=on_hand,
                    reason=StockMovement.Reason.ADJUSTMENT,
                    note=ledger_note,
                    submission_key=submission,
                )
            else:
                assert delta is not None
                stock = adjust_stock(product=product, delta=delta, note=ledger_note, submission_key=submission)
            record.movement = StockMovement.objects.filter(submission_key=submission).first()
            record.answer = _answer(record, stock)
            record.save(update_fields=["movement", "answer"])
    except IntegrityError:
        existing = adjustment_with_idempotency_key(key, idempotency_key)
        if existing is None:
            raise
        return _replay(existing, fingerprint)
    return Adjustment(answer=record.answer, created=True)


def _answer(record: PartnerStockAdjustment, stock: Stock) -> dict[str, Any]:
    movement = record.movement
    return {
        "id": record.pk,
        "sku": record.product.sku,
        "moved": movement.quantity if movement else 0,
        "ledger_line": movement.pk if movement else None,
        "on_hand": stock.on_hand,
        "reserved": stock.reserved,
        "available": stock.available,
        "created_at": record.created_at.isoformat(),
    }


def _replay(existing: PartnerStockAdjustment, fingerprint: str) -> Adjustment:
    if existing.request_hash != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was already used for a different adjustment.")
    return Adjustment(answer=existing.answer, created=False)
