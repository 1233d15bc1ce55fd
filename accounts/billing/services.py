"""Subscriptions: Checkout, the customer portal, and Stripe's webhooks.

Stripe decides which plan a user pays for; `accounts.selectors.user_effective_plan` turns the
stored subscription into a plan (a staff override still wins). Handlers never trust event order
or event contents for state: they re-read the subscription from Stripe and store what it says.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.billing import stripe_client
from accounts.billing.stripe_client import BillingError
from accounts.models import StripeEvent, Subscription, User
from accounts.plans import PlanKey

logger = logging.getLogger(__name__)

HANDLED_EVENTS = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}


def billing_enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY and settings.STRIPE_WEBHOOK_SECRET)


def _prices() -> dict[str, str]:
    """Plan key by Stripe price id."""
    prices = {
        settings.STRIPE_PRICE_PLUS: PlanKey.PLUS,
        settings.STRIPE_PRICE_GROWTH: PlanKey.GROWTH,
    }
    return {price: plan for price, plan in prices.items() if price}


def _price_for(plan_key: str) -> str:
    for price, plan in _prices().items():
        if plan == plan_key:
            return price
    raise BillingError(f"No Stripe price is configured for the {plan_key} plan.")


def customer_ensure(*, user: User) -> str:
    """The user's Stripe customer, created once (a stable idempotency key makes a re-run or a
    race return the same customer)."""
    if user.stripe_customer_id:
        return user.stripe_customer_id
    customer_id = stripe_client.create_customer(email=user.email, user_id=user.pk)
    User.objects.filter(pk=user.pk, stripe_customer_id="").update(stripe_customer_id=customer_id)
    user.refresh_from_db(fields=["stripe_customer_id"])
    return user.stripe_customer_id


def checkout_start(*, user: User, plan_key: str, now: datetime | None = None) -> str:
    """A Checkout session to subscribe to a paid plan; returns the URL to redirect to.

    The idempotency key is the same for the same user, plan and hour, so a double click or a
    retried request returns the session already made instead of a second one.
    """
    if plan_key not in (PlanKey.PLUS, PlanKey.GROWTH):
        raise BillingError(f"{plan_key!r} is not a plan you can subscribe to.")
    current = Subscription.objects.filter(user=user).first()
    if current is not None and current.status in GOOD_STANDING:
        raise BillingError(
            "You already have a subscription; change plan in the billing portal instead."
        )
    customer_id = customer_ensure(user=user)
    hour = (now or timezone.now()).astimezone(UTC).strftime("%Y%m%d%H")
    # After a subscription ends, the next checkout is a new one, not a replay of the last.
    previous = current.stripe_subscription_id if current is not None else "none"
    return stripe_client.create_checkout_session(
        customer_id=customer_id,
        user_id=user.pk,
        price_id=_price_for(plan_key),
        success_url=f"{settings.SITE_URL}/billing/?checkout=success",
        cancel_url=f"{settings.SITE_URL}/billing/?checkout=canceled",
        idempotency_key=f"sheaf-checkout-{user.pk}-{plan_key}-{hour}-{previous}",
    )


def portal_start(*, user: User, now: datetime | None = None) -> str:
    """A customer-portal session to change plan, update payment or cancel."""
    if not user.stripe_customer_id:
        raise BillingError("You have no subscription to manage yet.")
    minute = (now or timezone.now()).astimezone(UTC).strftime("%Y%m%d%H%M")
    return stripe_client.create_portal_session(
        customer_id=user.stripe_customer_id,
        return_url=f"{settings.SITE_URL}/billing/",
        idempotency_key=f"sheaf-portal-{user.pk}-{minute}",
    )


def subscription_cancel_now(*, user: User) -> bool:
    """Cancel the user's subscription in Stripe at once (before their account is deleted, so
    nobody is billed for an account that no longer exists). False when there was nothing to
    cancel: billing off, no subscription, or one that already ended. Raises BillingError."""
    subscription = Subscription.objects.filter(user=user).first()
    if (
        not billing_enabled()
        or subscription is None
        or not subscription.stripe_subscription_id
        or subscription.status in ENDED
    ):
        return False
    stripe_client.cancel_subscription(subscription.stripe_subscription_id)
    Subscription.objects.filter(pk=subscription.pk).update(status=Subscription.Status.CANCELED)
    return True


def customer_forget(*, user: User) -> None:
    """Delete the user's Stripe customer (their account is being deleted). Stripe cancels
    every subscription the customer still has, including one a Checkout created moments ago
    whose webhook has not arrived, so no subscription is left to bill. Raises BillingError."""
    if billing_enabled() and user.stripe_customer_id:
        stripe_client.delete_customer(user.stripe_customer_id)


# --- Webhooks ----------------------------------------------------------------------------------


def webhook_receive(*, payload: bytes, signature: str) -> StripeEvent | None:
    """Verify and store one webhook delivery; None when the event was stored before (Stripe
    redelivers). Processing happens after commit, in the worker, so Stripe gets its 2xx fast.
    Raises InvalidSignature for a request that is not from Stripe, MalformedEvent for a signed
    body that is not an event; nothing is written then."""
    event = stripe_client.verify_event(payload, signature)
    handled = event.get("type") in HANDLED_EVENTS
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=event["id"],
                type=event.get("type", ""),
                payload=event,
                status=StripeEvent.Status.RECEIVED if handled else StripeEvent.Status.IGNORED,
            )
    except IntegrityError:
        return None
    if handled:
        transaction.on_commit(lambda: _enqueue(stored.pk))
    return stored


def _enqueue(event_pk: int) -> None:
    from django_q.tasks import async_task

    async_task("accounts.tasks.stripe_event_process", event_pk, task_name="stripe-event")


def event_process(*, event_pk: int) -> StripeEvent:
    """Apply one stored event: find the subscription it is about and sync it from Stripe.

    Safe to run twice or concurrently: the outcome is the subscription's current state.
    """
    event = StripeEvent.objects.get(pk=event_pk)
    if event.status in (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED):
        return event
    try:
        subscription_id, user_hint = _subscription_of(event.payload)
        if subscription_id:
            subscription_sync(subscription_id=subscription_id, user_hint=user_hint)
        status = StripeEvent.Status.PROCESSED if subscription_id else StripeEvent.Status.IGNORED
        error = ""
    except BillingError as exc:
        # Left as failed (Stripe got its 2xx); the next event for the same subscription, or
        # staff re-running it, brings the state up to date.
        status, error = StripeEvent.Status.FAILED, str(exc)
        logger.warning("stripe event %s failed: %s", event.event_id, exc)
    StripeEvent.objects.filter(pk=event.pk).update(
        status=status, error=error, processed_at=timezone.now()
    )
    event.refresh_from_db()
    return event


def _subscription_of(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The subscription an event concerns, and a user id hint (client_reference_id); (None,
    None) when the event names none. A signed event is Stripe's, but its shape is not trusted:
    a part that is not the object or string expected names nothing (the event is ignored)
    instead of failing its processing for ever."""
    obj = _object(_object(event.get("data")).get("object"))
    kind = event.get("type", "")
    if kind == "checkout.session.completed":
        return _text(obj.get("subscription")), _text(obj.get("client_reference_id"))
    if kind.startswith("customer.subscription."):
        return _text(obj.get("id")), None
    if kind.startswith("invoice."):
        parent = _object(_object(obj.get("parent")).get("subscription_details"))
        return _text(parent.get("subscription")) or _text(obj.get("subscription")), None
    return None, None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def subscription_sync(*, subscription_id: str, user_hint: str | None = None) -> Subscription | None:
    """Store the subscription as Stripe has it now (re-read, never taken from the event)."""
    data = stripe_client.retrieve_subscription(subscription_id)
    user = _owner(data, user_hint)
    if user is None:
        logger.warning("stripe subscription %s has no Sheaf user", subscription_id)
        return None
    items = (data.get("items") or {}).get("data") or [{}]
    price = (items[0].get("price") or {}).get("id", "")
    plan = _prices().get(price)
    if plan is None:
        raise BillingError(f"Subscription {subscription_id} has unknown price {price!r}.")
    period_end = items[0].get("current_period_end") or data.get("current_period_end")
    status = data.get("status", "")
    with transaction.atomic():
        subscription, _ = Subscription.objects.select_for_update().get_or_create(
            user=user,
            defaults={"plan": plan, "status": status, "stripe_subscription_id": subscription_id},
        )
        if _superseded(subscription, subscription_id, status):
            return subscription
        past_due_since = subscription.past_due_since
        if status == Subscription.Status.PAST_DUE:
            past_due_since = past_due_since or timezone.now()
        else:
            past_due_since = None
        subscription.plan = plan
        subscription.status = status
        subscription.stripe_subscription_id = subscription_id
        subscription.stripe_customer_id = data.get("customer") or ""
        subscription.current_period_end = (
            datetime.fromtimestamp(period_end, UTC) if period_end else None
        )
        subscription.past_due_since = past_due_since
        subscription.save()
    if not user.stripe_customer_id and data.get("customer"):
        User.objects.filter(pk=user.pk, stripe_customer_id="").update(
            stripe_customer_id=data["customer"]
        )
    return subscription


# Stripe bills nothing more for these; any other status may still charge (unpaid retries too).
ENDED = {Subscription.Status.CANCELED, Subscription.Status.INCOMPLETE_EXPIRED}

GOOD_STANDING = {
    Subscription.Status.ACTIVE,
    Subscription.Status.TRIALING,
    Subscription.Status.PAST_DUE,
}


def _superseded(current: Subscription, subscription_id: str, status: str) -> bool:
    """A late event about an old, ended subscription must not overwrite the one that replaced it."""
    return (
        bool(current.stripe_subscription_id)
        and current.stripe_subscription_id != subscription_id
        and current.status in GOOD_STANDING
        and status not in GOOD_STANDING
    )


def _owner(data: dict[str, Any], user_hint: str | None) -> User | None:
    customer = data.get("customer")
    if customer:
        user = User.objects.filter(stripe_customer_id=customer).first()
        if user is not None:
            return user
    for hint in (user_hint, (data.get("metadata") or {}).get("user_id")):
        if hint and str(hint).isdigit():
            user = User.objects.filter(pk=int(hint)).first()
            if user is not None:
                return user
    return None
