"""The Stripe adapter on its own: every call, every error class, real SDK, local Stripe server."""

import logging
import socket
from decimal import Decimal

import pytest

from payments.gateways import get_gateway
from payments.gateways.base import (
    GatewayConfigurationError,
    GatewayError,
    IntentStatus,
    TransientGatewayError,
)
from payments.money import to_minor_units


def authorize(gateway, *, order="ord_test1", amount=2500, currency="USD", method="pm_card_visa", key=None):
    return gateway.authorize(
        order_reference=order,
        amount_minor=amount,
        currency=currency,
        payment_method=method,
        idempotency_key=key or f"{order}:authorize",
    )


@pytest.fixture
def gateway(fake_stripe):
    gateway = get_gateway()
    assert gateway.name == "stripe"
    return gateway


@pytest.mark.parametrize(
    ("total", "currency", "minor", "stripe_currency"),
    [
        (Decimal("25.00"), "USD", 2500, "usd"),
        (Decimal("19.99"), "EUR", 1999, "eur"),
        (Decimal("2400"), "JPY", 2400, "jpy"),
    ],
)
def test_an_authorisation_holds_the_total_in_minor_units_for_manual_capture_tagged_with_the_order(
    gateway, fake_stripe, total, currency, minor, stripe_currency
):
    result = authorize(gateway, amount=to_minor_units(total, currency), currency=currency)

    assert result.status == IntentStatus.AUTHORIZED
    intent = fake_stripe.intents[result.reference]
    assert (intent["amount"], intent["currency"]) == (minor, stripe_currency)
    assert intent["capture_method"] == "manual"
    assert intent["metadata"] == {"order_reference": "ord_test1"}
    assert (result.card_brand, result.card_last4) == ("visa", "4242")
    [call] = fake_stripe.calls_of("create_intent")
    assert call.idempotency_key == "ord_test1:authorize"


def test_an_authorisation_sent_again_with_its_key_returns_the_first_intent(gateway, fake_stripe):
    first = authorize(gateway)
    again = authorize(gateway)

    assert again == first
    assert len(fake_stripe.intents) == 1
    assert fake_stripe.calls_of("create_intent")[1].replayed


def test_the_same_key_with_another_amount_is_our_error_never_a_decline(gateway, fake_stripe, caplog):
    authorize(gateway, amount=2500)

    with caplog.at_level(logging.ERROR), pytest.raises(GatewayError) as raised:
        authorize(gateway, amount=9900)

    assert not isinstance(raised.value, TransientGatewayError)
    assert "same parameters" in str(raised.value)
    assert len(fake_stripe.intents) == 1
    assert any("idempotency" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("method", "decline_code", "message"),
    [
        ("pm_card_chargeDeclined", "generic_decline", "Your card was declined."),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds", "Your card has insufficient funds."),
        ("pm_card_chargeDeclinedExpiredCard", "expired_card", "Your card has expired."),
        ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "Your card's security code is incorrect."),
        ("pm_card_chargeDeclinedFraudulent", "fraudulent", "Your card was declined."),
        (
            "pm_card_chargeDeclinedProcessingError",
            "processing_error",
            "An error occurred while processing your card. Try again in a little while.",
        ),
    ],
)
def test_a_card_error_is_a_decline_with_stripes_code_and_a_message_for_the_shopper(
    gateway, fake_stripe, method, decline_code, message
):
    result = authorize(gateway, method=method)

    assert result.status == IntentStatus.DECLINED
    assert (result.decline_code, result.shopper_message) == (decline_code, message)
    assert fake_stripe.intents[result.reference]["status"] == "requires_payment_method"
    assert authorize(gateway, method=method) == result  # the replay of a decline is the same decline


@pytest.mark.parametrize("method", ["pm_card_authenticationRequired", "pm_card_threeDSecure2Required"])
def test_a_card_needing_3d_secure_requires_action_with_the_client_secret(gateway, fake_stripe, method):
    result = authorize(gateway, method=method)

    assert result.status == IntentStatus.REQUIRES_ACTION
    assert result.client_secret == fake_stripe.intents[result.reference]["client_secret"]
    assert result.client_secret.startswith(result.reference + "_secret_")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient_and_charge_nothing(gateway, fake_stripe, status):
    fake_stripe.fail_next("create_intent", status=status)

    with pytest.raises(TransientGatewayError):
        authorize(gateway)

    assert fake_stripe.intents == {}
    assert authorize(gateway).status == IntentStatus.AUTHORIZED


def test_a_timeout_is_transient_and_the_retry_with_the_same_key_finds_the_charge(gateway, fake_stripe):
    fake_stripe.hang_next("create_intent")

    with pytest.raises(TransientGatewayError):
        authorize(gateway)
    [charged] = fake_stripe.intents.values()  # the charge went through; only its answer was lost

    result = authorize(gateway)

    assert result.reference == charged["id"]
    assert result.status == IntentStatus.AUTHORIZED
    assert len(fake_stripe.intents) == 1


def test_the_sdks_own_network_retries_reuse_the_key_and_recover_within_one_call(fake_stripe, settings):
    settings.STRIPE_MAX_NETWORK_RETRIES = 1
    fake_stripe.hang_next("create_intent")

    result = authorize(get_gateway())

    assert result.status == IntentStatus.AUTHORIZED
    first, retry = fake_stripe.calls_of("create_intent")
    assert first.idempotency_key == retry.idempotency_key == "ord_test1:authorize"
    assert retry.replayed
    assert len(fake_stripe.intents) == 1


def test_stripe_out_of_reach_is_transient(fake_stripe, settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed.getsockname()[1]}"

    with pytest.raises(TransientGatewayError):
        authorize(get_gateway())


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_a_configuration_fault_logged_as_an_error(gateway, fake_stripe, caplog, status):
    fake_stripe.fail_next("create_intent", status=status)

    with caplog.at_level(logging.ERROR), pytest.raises(GatewayConfigurationError):
        authorize(gateway)

    assert [r.levelname for r in caplog.records if "credentials" in r.getMessage()] == ["ERROR"]


def test_a_wrong_secret_key_is_a_configuration_fault(fake_stripe, settings):
    settings.STRIPE_SECRET_KEY = "sk_test_someone_elses"

    with pytest.raises(GatewayConfigurationError):
        authorize(get_gateway())


def test_an_unknown_payment_method_is_a_permanent_error_not_a_decline(gateway):
    with pytest.raises(GatewayError) as raised:
        authorize(gateway, method="pm_nonsense")

    assert not isinstance(raised.value, TransientGatewayError)


def test_capture_takes_the_held_amount_once(gateway, fake_stripe):
    held = authorize(gateway)

    captured = gateway.capture(
        provider_reference=held.reference, amount_minor=2500, idempotency_key="ord_test1:capture"
    )
    again = gateway.capture(provider_reference=held.reference, amount_minor=2500, idempotency_key="ord_test1:capture")
    elsewhere = gateway.capture(provider_reference=held.reference, amount_minor=2500, idempotency_key="other")

    assert captured.status == again.status == elsewhere.status == IntentStatus.CAPTURED
    assert fake_stripe.charge_of(held.reference)["amount_captured"] == 2500


def test_a_cancelled_hold_cannot_be_captured(gateway):
    held = authorize(gateway)
    gateway.void(provider_reference=held.reference, idempotency_key="ord_test1:void")

    with pytest.raises(GatewayError):
        gateway.capture(provider_reference=held.reference, amount_minor=2500, idempotency_key="ord_test1:capture")


def test_void_cancels_a_hold_and_refuses_a_captured_payment(gateway, fake_stripe):
    held = authorize(gateway)
    assert gateway.void(provider_reference=held.reference, idempotency_key="k1").status == IntentStatus.VOIDED
    assert gateway.void(provider_reference=held.reference, idempotency_key="k2").status == IntentStatus.VOIDED

    taken = authorize(gateway, order="ord_test2")
    gateway.capture(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test2:capture")
    with pytest.raises(GatewayError):
        gateway.void(provider_reference=taken.reference, idempotency_key="ord_test2:void")
    assert fake_stripe.intents[taken.reference]["status"] == "succeeded"


def test_refunds_give_back_part_then_the_rest_once_per_key(gateway, fake_stripe):
    taken = authorize(gateway)
    gateway.capture(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test1:capture")

    part = gateway.refund(provider_reference=taken.reference, amount_minor=1000, idempotency_key="ord_test1:refund-1")
    replay = gateway.refund(provider_reference=taken.reference, amount_minor=1000, idempotency_key="ord_test1:refund-1")
    rest = gateway.refund(provider_reference=taken.reference, amount_minor=1500, idempotency_key="ord_test1:refund-2")

    assert (part.status, part.amount_refunded_minor) == (IntentStatus.REFUNDED, 1000)
    assert replay.amount_refunded_minor == 1000
    assert (rest.status, rest.amount_refunded_minor) == (IntentStatus.REFUNDED, 2500)
    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [1000, 1500]


def test_refunding_more_than_is_left_is_refused(gateway):
    taken = authorize(gateway)
    gateway.capture(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test1:capture")

    with pytest.raises(GatewayError):
        gateway.refund(provider_reference=taken.reference, amount_minor=2600, idempotency_key="ord_test1:refund-1")


def test_a_refund_whose_answer_was_lost_is_not_made_twice(gateway, fake_stripe):
    taken = authorize(gateway)
    gateway.capture(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test1:capture")
    fake_stripe.hang_next("create_refund")

    with pytest.raises(TransientGatewayError):
        gateway.refund(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test1:refund-1")
    result = gateway.refund(provider_reference=taken.reference, amount_minor=2500, idempotency_key="ord_test1:refund-1")

    assert result.amount_refunded_minor == 2500
    assert len(fake_stripe.refunds) == 1


def test_a_lost_authorisation_is_found_by_its_order_reference(gateway, fake_stripe):
    authorize(gateway, order="ord_other")
    fake_stripe.hang_next("create_intent")
    with pytest.raises(TransientGatewayError):
        authorize(gateway)

    found = gateway.find_authorization(order_reference="ord_test1", idempotency_key="ord_test1:authorize")

    assert found is not None
    assert fake_stripe.intents[found.reference]["metadata"]["order_reference"] == "ord_test1"
    assert found.status == IntentStatus.AUTHORIZED
    assert gateway.find_authorization(order_reference="ord_never", idempotency_key="ord_never:authorize") is None


def test_retrieve_reports_the_providers_current_view(gateway, fake_stripe):
    held = authorize(gateway)
    assert gateway.retrieve(provider_reference=held.reference).status == IntentStatus.AUTHORIZED

    fake_stripe.capture_in_dashboard(held.reference)

    assert gateway.retrieve(provider_reference=held.reference).status == IntentStatus.CAPTURED
    with pytest.raises(GatewayError):
        gateway.retrieve(provider_reference="pi_doesnotexist")
