"""The only module that imports `stripe`. Its errors become BillingError at this border.

Every POST carries an idempotency key chosen by the caller, stable across re-runs of the same
work, so a retried task or a double click never creates a second customer or session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from django.conf import settings

from batchsite.json_input import InvalidJson, json_loads

if TYPE_CHECKING:
    import stripe


STRIPE_EVENT_MAX_DEPTH = 64
# As long as the columns that store them (accounts.models.StripeEvent).
MAX_EVENT_ID_LENGTH = 255
MAX_EVENT_TYPE_LENGTH = 100


class BillingError(Exception):
    """Stripe refused or could not be reached; the message is safe to show staff."""


class InvalidSignature(BillingError):
    """A webhook whose signature does not verify against STRIPE_WEBHOOK_SECRET."""


class MalformedEvent(BillingError):
    """A webhook whose signature verifies but whose body is not a Stripe event: not a JSON
    object, or without a string `id` (or `type`) that Sheaf stores it by."""


def _client() -> stripe.StripeClient:
    import stripe  # 20 MB: only the processes that call Stripe pay for it

    options: dict[str, Any] = {"max_network_retries": 2}
    if settings.STRIPE_API_BASE:
        options["base_addresses"] = {"api": settings.STRIPE_API_BASE}
    return stripe.StripeClient(settings.STRIPE_SECRET_KEY, **options)


@contextlib.contextmanager
def _billing_errors(*, missing_ok: bool = False) -> Iterator[None]:
    """Stripe's errors become BillingError. With `missing_ok`, an object Stripe does not know
    (`resource_missing`) is no error: there is nothing left to do to it, so a retry after a
    half-finished run succeeds."""
    import stripe  # 20 MB: only the processes that call Stripe pay for it

    try:
        yield
    except stripe.InvalidRequestError as exc:
        if not (missing_ok and exc.code == "resource_missing"):
            raise BillingError(exc.user_message or str(exc)) from None
    except stripe.StripeError as exc:
        raise BillingError(exc.user_message or str(exc)) from None


_T = TypeVar("_T")


def _call(
    method: Callable[..., _T], params: dict[str, Any], *, idempotency_key: str | None = None
) -> _T:
    options = {"idempotency_key": idempotency_key} if idempotency_key else {}
    with _billing_errors():
        return method(params=params, options=options)


def create_customer(*, email: str, user_id: int) -> str:
    customer = _call(
        _client().v1.customers.create,
        {"email": email, "metadata": {"user_id": str(user_id)}},
        idempotency_key=f"sheaf-customer-{user_id}",
    )
    return customer.id


def create_checkout_session(
    *,
    customer_id: str,
    user_id: int,
    price_id: str,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> str:
    """A subscription-mode Checkout session; returns the URL to send the user to."""
    session = _call(
        _client().v1.checkout.sessions.create,
        {
            "mode": "subscription",
            "customer": customer_id,
            "client_reference_id": str(user_id),
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": {"user_id": str(user_id)},
            "subscription_data": {"metadata": {"user_id": str(user_id)}},
        },
        idempotency_key=idempotency_key,
    )
    if session.url is None:  # Stripe sets it for hosted Checkout, the only kind made here
        raise BillingError("Stripe made a Checkout session without a URL to send the user to.")
    return session.url


def create_portal_session(*, customer_id: str, return_url: str, idempotency_key: str) -> str:
    session = _call(
        _client().v1.billing_portal.sessions.create,
        {"customer": customer_id, "return_url": return_url},
        idempotency_key=idempotency_key,
    )
    return session.url


def retrieve_subscription(subscription_id: str) -> dict[str, Any]:
    """The subscription as Stripe has it now, as plain data."""
    with _billing_errors():
        return _client().v1.subscriptions.retrieve(subscription_id).to_dict()


def cancel_subscription(subscription_id: str) -> None:
    """End a subscription now (no refund, no proration); one Stripe has already canceled, or
    does not know, needs nothing more."""
    with _billing_errors(missing_ok=True):
        _client().v1.subscriptions.cancel(subscription_id)


def delete_customer(customer_id: str) -> None:
    """Delete a customer, which in Stripe also cancels every subscription it still has at once;
    one Stripe no longer knows needs nothing more."""
    with _billing_errors(missing_ok=True):
        _client().v1.customers.delete(customer_id)


def retrieve_checkout_session(session_id: str) -> dict[str, Any]:
    with _billing_errors():
        return _client().v1.checkout.sessions.retrieve(session_id).to_dict()


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def verify_event(payload: bytes, signature: str) -> dict[str, Any]:
    """The event in a webhook request, after checking its signature on the raw bytes.

    InvalidSignature when the request is not from Stripe; MalformedEvent when it is signed but
    not an event Sheaf can store (a signed body is trusted to be Stripe's, not to be well formed:
    the library would fail on it with whatever error its parsing happens to raise)."""
    import stripe  # 20 MB: only the processes that call Stripe pay for it

    try:
        stripe.WebhookSignature.verify_header(
            payload,
            signature,
            settings.STRIPE_WEBHOOK_SECRET,
            tolerance=stripe.Webhook.DEFAULT_TOLERANCE,  # a replayed old delivery is refused
        )
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise InvalidSignature(str(exc)) from None
    try:
        # Stripe's events nest about ten levels; the bound only stops a pathological body.
        event = json_loads(payload, max_depth=STRIPE_EVENT_MAX_DEPTH)
    except InvalidJson as exc:
        raise MalformedEvent(f"The event is not valid JSON: {exc}.") from None
    if not isinstance(event, dict):
        raise MalformedEvent(f"The event is {_json_kind(event)}, not a JSON object.")
    event_id, event_type = event.get("id"), event.get("type", "")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_EVENT_ID_LENGTH:
        raise MalformedEvent(
            f'The event has no "id" string of 1 to {MAX_EVENT_ID_LENGTH} characters.'
        )
    if not isinstance(event_type, str) or len(event_type) > MAX_EVENT_TYPE_LENGTH:
        raise MalformedEvent(
            f'The event\'s "type" is not a string of at most {MAX_EVENT_TYPE_LENGTH} characters.'
        )
    return event
