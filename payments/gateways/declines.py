"""What a shopper may read about a declined payment, whichever gateway declined it.

Our words, keyed by Stripe's decline codes (which the simulated gateway uses too), so
nothing a provider says about fraud checks (lost or stolen cards, fraud rules) reaches a
possible fraudster.
"""

SHOPPER_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "incorrect_number": "Your card number is incorrect.",
    "invalid_expiry_month": "Your card's expiration date is incorrect.",
    "invalid_expiry_year": "Your card's expiration date is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little while.",
    "authentication_required": "Your bank asked to authenticate this payment; please try again.",
    "payment_intent_authentication_failure": "We could not authenticate your payment method.",
    "invalid_payment_method": "This payment method cannot be used.",
}
DEFAULT_SHOPPER_MESSAGE = "Your card was declined."


def shopper_message(decline_code: str) -> str:
    """The words a shopper reads for this decline code."""
    return SHOPPER_MESSAGES.get(decline_code, DEFAULT_SHOPPER_MESSAGE)
