"""A fake of the few Stripe API endpoints Sheaf calls, on loopback, for tests and offline demos.

The server is standard library only; webhook signatures are made by the real ``stripe`` library's
own signing code (``stripe.WebhookSignature.generate_signature_header``). The real ``stripe``
library is pointed at it unchanged, either per client or globally::

    with FakeStripe(webhook_url=live_server.url + "/billing/webhook/") as fake:
        client = stripe.StripeClient(
            "sk_test_fake", base_addresses={"api": fake.base_url}, max_network_retries=0
        )
        # or: stripe.api_key = "sk_test_fake"; stripe.api_base = fake.base_url
        customer = client.v1.customers.create(params={"email": "a@example.com"})
        ...
        assert fake.idempotency_keys["/v1/checkout/sessions"] == ["checkout-7", "checkout-7"]

API (``Authorization: Bearer sk_test_...`` or ``rk_test_...`` required, form-encoded bodies):
``POST|GET /v1/customers``, ``GET|POST|DELETE /v1/customers/{id}``, ``POST /v1/checkout/sessions``,
``GET /v1/checkout/sessions/{id}``, ``POST /v1/checkout/sessions/{id}/expire``,
``POST /v1/billing_portal/sessions``, ``GET /v1/subscriptions``,
``GET|POST|DELETE /v1/subscriptions/{id}``, ``GET /v1/prices/{id}``, ``GET /v1/events/{id}``.
Errors have Stripe's shape (``{"error": {"type", "code", "message", "param"}}``): 401 without a
test key, 404 ``resource_missing`` for unknown ids in the path, 400 for unknown ids in parameters,
missing or unknown parameters, and reuse of an ``Idempotency-Key`` with other parameters.
A POST with an ``Idempotency-Key`` seen before replays the stored answer (``Idempotent-Replayed:
true``), as Stripe does; only 2xx answers are stored.

Hosted stand-ins (no key needed, for browsers): ``GET /checkout/{id}`` ("Pay with test card"),
``POST /checkout/{id}/pay`` (completes the session, creates the subscription, sends the signed
``checkout.session.completed`` and ``customer.subscription.created`` webhooks to
``fake.webhook_url`` before answering, then 303 to ``success_url`` with ``{CHECKOUT_SESSION_ID}``
filled in); ``GET /portal/{id}`` with ``POST /portal/{id}/cancel`` (canceled now,
``customer.subscription.deleted``), ``POST /portal/{id}/cancel-at-period-end`` and
``POST /portal/{id}/switch`` (form field ``price``; ``customer.subscription.updated``), each 303 to
``return_url``.

Run standalone with ``python -m tests.support.fake_stripe --port 8091 --webhook-url
http://127.0.0.1:8000/billing/webhook/ --webhook-secret whsec_test``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import fnmatch
import html
import json
import re
import secrets
import string
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from tests.support.loopback import LoopbackHandler, LoopbackServer

__all__ = [
    "API_VERSION",
    "DEFAULT_PRICES",
    "DEFAULT_WEBHOOK_SECRET",
    "FAKE_API_KEY",
    "Delivery",
    "FakeStripe",
    "RecordedRequest",
    "StripeError",
    "fake_stripe",
    "make_event",
    "parse_form",
    "sign_header",
    "signed_payload",
]

FAKE_API_KEY = "sk_test_fake"
DEFAULT_WEBHOOK_SECRET = "whsec_test_fake"
DEFAULT_PRICES: dict[str, str] = {"price_plus": "Plus", "price_growth": "Growth"}
PERIOD_SECONDS = 30 * 24 * 3600

try:  # the API version the installed library speaks (and so the one events are rendered in)
    import stripe as _stripe

    API_VERSION: str = str(_stripe.api_version)
except Exception:  # pragma: no cover - the fake serves without the library; signing needs it
    _stripe = None  # type: ignore[assignment]
    API_VERSION = "2025-03-31.basil"

SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)

# Top-level parameters each endpoint accepts (Stripe answers 400 "Received unknown parameter").
_CUSTOMER_PARAMS = {
    "address",
    "description",
    "email",
    "expand",
    "invoice_settings",
    "metadata",
    "name",
    "payment_method",
    "phone",
    "preferred_locales",
    "shipping",
    "tax",
    "tax_id_data",
    "test_clock",
}
_CHECKOUT_PARAMS = {
    "allow_promotion_codes",
    "automatic_tax",
    "billing_address_collection",
    "cancel_url",
    "client_reference_id",
    "consent_collection",
    "currency",
    "custom_text",
    "customer",
    "customer_email",
    "customer_update",
    "discounts",
    "expand",
    "expires_at",
    "line_items",
    "locale",
    "metadata",
    "mode",
    "payment_method_collection",
    "payment_method_types",
    "return_url",
    "saved_payment_method_options",
    "subscription_data",
    "success_url",
    "tax_id_collection",
    "ui_mode",
}
_PORTAL_PARAMS = {"configuration", "customer", "expand", "flow_data", "locale", "return_url"}
_SUBSCRIPTION_UPDATE_PARAMS = {
    "automatic_tax",
    "billing_cycle_anchor",
    "cancel_at",
    "cancel_at_period_end",
    "cancellation_details",
    "collection_method",
    "default_payment_method",
    "default_tax_rates",
    "description",
    "discounts",
    "expand",
    "items",
    "metadata",
    "off_session",
    "pause_collection",
    "payment_behavior",
    "proration_behavior",
    "proration_date",
    "trial_end",
}
_SUBSCRIPTION_CANCEL_PARAMS = {"cancellation_details", "expand", "invoice_now", "prorate"}
_LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


# -- wire helpers ---------------------------------------------------------------------------------


def _new_id(prefix: str, length: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


_KEY_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_form(pairs: list[tuple[str, str]] | str | bytes) -> dict[str, Any]:
    """Decode Stripe's bracket notation into nested dicts and lists.

    ``line_items[0][price]=p&metadata[user_id]=7&expand[]=x`` gives
    ``{"line_items": [{"price": "p"}], "metadata": {"user_id": "7"}, "expand": ["x"]}``. Values stay
    strings, as on the wire. A dict whose keys are all indexes becomes a list, except under
    ``metadata`` (whose keys are the caller's own).
    """
    if isinstance(pairs, bytes):
        pairs = pairs.decode("utf-8")
    if isinstance(pairs, str):
        pairs = parse_qsl(pairs, keep_blank_values=True)
    root: dict[str, Any] = {}
    for key, value in pairs:
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head) :])]
        node = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # foo[] appends
                part = str(len(node))
            if last:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _listify(root)


def _listify(node: Any, *, under_metadata: bool = False) -> Any:
    if not isinstance(node, dict):
        return node
    out = {
        k: _listify(v, under_metadata=(k == "metadata" and not under_metadata))
        for k, v in node.items()
    }
    if not under_metadata and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1", "yes")


def sign_header(payload: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``, made by the stripe library's own code."""
    text = payload.decode("utf-8") if isinstance(payload, bytes | bytearray) else payload
    if _stripe is None:  # pragma: no cover
        raise RuntimeError("the stripe library is needed to sign webhooks")
    return _stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)


def signed_payload(
    event: Mapping[str, Any] | str | bytes, secret: str, *, timestamp: int | None = None
) -> tuple[bytes, str]:
    """``(body bytes, Stripe-Signature header)`` for a webhook delivery of ``event``.

    The body is the event as Stripe sends it (pretty-printed JSON), so a receiver that re-serialises
    the JSON instead of verifying the raw bytes fails. ``timestamp`` defaults to now.
    """
    if isinstance(event, Mapping):
        body = json.dumps(event, indent=2).encode("utf-8")
    elif isinstance(event, str):
        body = event.encode("utf-8")
    else:
        body = bytes(event)
    return body, sign_header(body, secret, timestamp=timestamp)


def make_event(
    type: str,
    obj: Mapping[str, Any],
    *,
    previous_attributes: Mapping[str, Any] | None = None,
    event_id: str | None = None,
    created: int | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    api_version: str = API_VERSION,
) -> dict[str, Any]:
    """A Stripe Event (snapshot payload) wrapping ``obj``."""
    data: dict[str, Any] = {"object": copy.deepcopy(dict(obj))}
    if previous_attributes is not None:
        data["previous_attributes"] = copy.deepcopy(dict(previous_attributes))
    return {
        "id": event_id or _new_id("evt_"),
        "object": "event",
        "api_version": api_version,
        "created": int(created if created is not None else time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }


def _previous_attributes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in before.items() if after.get(k) != v}


# -- records --------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One HTTP request the fake received (``status``/``response`` filled in once answered)."""

    method: str
    path: str
    query: dict[str, list[str]]
    params: dict[str, Any]  # form body (POST) or query string (GET/DELETE), bracket-decoded
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.time() on arrival
    status: int | None = None
    response: Any = None  # the JSON answer of an API call
    request_id: str = ""
    replayed: bool = False  # answered from the idempotency store

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def api_key(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


@dataclass
class Delivery:
    """One webhook POST the fake made."""

    event: dict[str, Any]
    url: str
    status: int | None  # None: the connection failed (see ``error``)
    body: str
    error: str | None
    at: float
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.event["type"]

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class StripeError(Exception):
    """An API answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": type, "message": message}
        if code:
            self.body["code"] = code
            self.body["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["param"] = param


def _missing(kind: str, ident: str, *, status: int, param: str | None) -> StripeError:
    return StripeError(status, f"No such {kind}: '{ident}'", code="resource_missing", param=param)


@dataclass
class _Failure:
    pattern: str
    method: str | None
    status: int
    times: int | None
    error: StripeError


@dataclass
class _Answer:
    status: int
    body: Any  # JSON for the API; str for HTML
    headers: dict[str, str] = field(default_factory=dict)
    html: bool = False


# -- the fake -------------------------------------------------------------------------------------


class FakeStripe(LoopbackServer):
    """The fake Stripe server. Start it with ``with FakeStripe() as fake:`` (or ``start()``).

    Settable attributes: ``webhook_url`` (None: events are recorded in ``events`` but not sent),
    ``webhook_secret``, ``api_key`` (None: any ``sk_test_``/``rk_test_`` key; else only this one),
    ``checkout_events`` (the events ``/checkout/{id}/pay`` sends, in order; may also name
    ``invoice.paid``), ``api_webhooks`` (send ``customer.subscription.updated|deleted`` when the API
    changes a subscription, from a background thread after answering; default True),
    ``verbose``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        webhook_url: str | None = None,
        webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
        prices: Mapping[str, str] | None = None,
        api_key: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.api_key = api_key
        self.verbose = verbose
        self.api_webhooks = True
        self.checkout_events: list[str] = [
            "checkout.session.completed",
            "customer.subscription.created",
        ]
        self._lock = threading.RLock()
        self._requests: list[RecordedRequest] = []
        self._idempotency: dict[str, tuple[str, str, dict[str, Any], _Answer, str]] = {}
        self._idempotency_keys: dict[str, list[str]] = {}
        self._customers: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._line_items: dict[str, list[dict[str, Any]]] = {}
        self._subscription_data: dict[str, dict[str, Any]] = {}
        self._portals: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._prices: dict[str, dict[str, Any]] = {}
        self._invoices: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._deliveries: list[Delivery] = []
        self._failures: list[_Failure] = []
        self._errors: list[str] = []
        self._senders: list[threading.Thread] = []
        for i, (price_id, nickname) in enumerate((prices or DEFAULT_PRICES).items()):
            self.add_price(price_id, nickname, unit_amount=1900 + 3000 * i)

    # -- lifecycle ------------------------------------------------------------------------------

    def _server_classes(self) -> tuple[type[_Server], type[_Handler]]:
        return _Server, _Handler

    def stop(self) -> None:
        self.flush()
        super().stop()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait for webhooks the API sends in the background (``api_webhooks``) to be delivered."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                senders = [t for t in self._senders if t.is_alive() or t.ident is None]
                self._senders = senders
            if not senders:
                return
            for t in senders:
                if t.ident is None:  # registered, about to start once its answer is sent
                    time.sleep(0.01)
                else:
                    t.join(max(0.0, deadline - time.monotonic()))
            if time.monotonic() >= deadline:
                return

    # -- inspection -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    @staticmethod
    def _path_matches(pattern: str, path: str) -> bool:
        if any(c in pattern for c in "*?["):
            return fnmatch.fnmatchcase(path, pattern)
        return path.rstrip("/") == pattern.rstrip("/")

    def find(
        self, path: str | None = None, method: str | None = None, *, status: int | None = None
    ) -> list[RecordedRequest]:
        """Requests to ``path`` (exact, or a glob like ``/v1/subscriptions/*``; None: any)."""
        with self._lock:
            return [
                r
                for r in self._requests
                if (path is None or self._path_matches(path, r.path))
                and (method is None or r.method == method.upper())
                and (status is None or r.status == status)
            ]

    def count(
        self, path: str | None = None, method: str | None = None, *, status: int | None = None
    ) -> int:
        """How many requests matched ``path`` (as in ``find``), ``method`` and ``status``."""
        return len(self.find(path, method, status=status))

    def last(self, path: str | None = None, method: str | None = None) -> RecordedRequest:
        found = self.find(path, method)
        if not found:
            raise LookupError(f"no {method or ''} request to {path}".replace("  ", " "))
        return found[-1]

    @property
    def idempotency_keys(self) -> dict[str, list[str]]:
        """path -> the ``Idempotency-Key`` of every POST to it, in order, repeats included."""
        with self._lock:
            return {k: list(v) for k, v in self._idempotency_keys.items()}

    @property
    def customers(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._customers)

    @property
    def checkout_sessions(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._sessions)

    @property
    def portal_sessions(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._portals)

    @property
    def subscriptions(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._subscriptions)

    @property
    def prices(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._prices)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event the fake made (sent or not), oldest first."""
        with self._lock:
            return copy.deepcopy(self._events)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook POST made, oldest first."""
        with self._lock:
            return list(self._deliveries)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of bugs inside the fake itself (should stay empty)."""
        with self._lock:
            return list(self._errors)

    # -- direct manipulation (test helpers) ----------------------------------------------------

    def add_price(
        self,
        price_id: str,
        nickname: str | None = None,
        *,
        unit_amount: int = 1900,
        currency: str = "usd",
        interval: str = "month",
    ) -> dict[str, Any]:
        """Make ``price_id`` known (unknown prices in Checkout get 400 like Stripe)."""
        price = {
            "id": price_id,
            "object": "price",
            "active": True,
            "billing_scheme": "per_unit",
            "created": int(time.time()),
            "currency": currency,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": nickname,
            "product": "prod_" + price_id.removeprefix("price_")[:14].ljust(14, "0"),
            "recurring": {
                "interval": interval,
                "interval_count": 1,
                "usage_type": "licensed",
            },
            "type": "recurring",
            "unit_amount": unit_amount,
        }
        with self._lock:
            self._prices[price_id] = price
        return copy.deepcopy(price)

    def customer(
        self,
        customer_id: str | None = None,
        *,
        email: str | None = None,
        name: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create (or update) a customer directly; returns it."""
        with self._lock:
            cus = self._customers.get(customer_id or "")
            if cus is None:
                cus = self._new_customer(
                    {"email": email, "name": name, "metadata": dict(metadata or {})},
                    customer_id=customer_id,
                )
            else:
                if email is not None:
                    cus["email"] = email
                if name is not None:
                    cus["name"] = name
                if metadata is not None:
                    cus["metadata"].update(metadata)
            return copy.deepcopy(cus)

    def subscription(
        self,
        subscription_id: str | None = None,
        *,
        customer: str | None = None,
        price: str | None = None,
        status: str | None = None,
        cancel_at_period_end: bool | None = None,
        current_period_end: int | None = None,
        metadata: Mapping[str, str] | None = None,
        quantity: int | None = None,
        notify: bool = False,
        to: str | None = None,
    ) -> dict[str, Any]:
        """Create or change a subscription directly (no API call); returns it.

        Without ``subscription_id`` (or with an unknown one) a subscription is created: customer
        defaults to a new one, price to the first known price, status to "active". With a known id
        only the given fields change; status "canceled" also sets ``canceled_at``/``ended_at``.
        ``notify=True`` sends ``customer.subscription.created``, ``.updated`` (with
        ``previous_attributes``) or ``.deleted`` (when it became canceled) to ``to`` or
        ``webhook_url``, before returning.
        """
        if status is not None and status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"unknown subscription status {status!r}")
        if price is not None and price not in self._prices:
            raise ValueError(f"unknown price {price!r}: add it with fake.add_price()")
        with self._lock:
            sub = self._subscriptions.get(subscription_id or "")
            if sub is None:
                if customer is None:
                    customer = self._new_customer({})["id"]
                elif customer not in self._customers:
                    self._new_customer({}, customer_id=customer)
                sub = self._new_subscription(
                    customer=customer,
                    price=price or next(iter(self._prices)),
                    quantity=quantity or 1,
                    metadata=dict(metadata or {}),
                    status=status or "active",
                    subscription_id=subscription_id,
                )
                if cancel_at_period_end is not None:
                    sub["cancel_at_period_end"] = cancel_at_period_end
                if current_period_end is not None:
                    self._set_period_end(sub, current_period_end)
                event = self._event("customer.subscription.created", sub)
            else:
                before = copy.deepcopy(sub)
                if price is not None or quantity is not None:
                    self._set_price(sub, price or sub["items"]["data"][0]["price"]["id"], quantity)
                if status is not None:
                    self._set_status(sub, status)
                if cancel_at_period_end is not None:
                    sub["cancel_at_period_end"] = cancel_at_period_end
                    sub["cancel_at"] = sub["current_period_end"] if cancel_at_period_end else None
                if current_period_end is not None:
                    self._set_period_end(sub, current_period_end)
                if metadata is not None:
                    sub["metadata"].update(metadata)
                kind = (
                    "customer.subscription.deleted"
                    if sub["status"] == "canceled" and before["status"] != "canceled"
                    else "customer.subscription.updated"
                )
                event = self._event(
                    kind,
                    sub,
                    previous_attributes=(
                        _previous_attributes(before, sub) if kind.endswith(".updated") else None
                    ),
                )
            result = copy.deepcopy(sub)
        if notify:
            self._deliver_all([event], to)
        return result

    def invoice(
        self, subscription_id: str, *, paid: bool = True, billing_reason: str = "subscription_cycle"
    ) -> dict[str, Any]:
        """An Invoice for the subscription (for ``invoice.paid`` / ``invoice.payment_failed``).

        The subscription id is both at ``parent.subscription_details.subscription`` (API versions
        from 2025-03-31) and at the older top-level ``subscription``.
        """
        with self._lock:
            sub = self._get_subscription(subscription_id, status=404, param=None)
            inv = self._new_invoice(sub, paid=paid, billing_reason=billing_reason)
            return copy.deepcopy(inv)

    def complete_checkout(self, session_id: str, *, status: str = "active") -> dict[str, Any]:
        """Do what paying on the hosted page does (without the redirect); returns the session."""
        with self._lock:
            events = self._complete(session_id, status=status)
            session = copy.deepcopy(self._sessions[session_id])
        self._deliver_all(events, None)
        return session

    def event(
        self,
        type: str,
        obj: Mapping[str, Any],
        *,
        previous_attributes: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Make (and record in ``events``) an Event wrapping ``obj``, without sending it."""
        with self._lock:
            return copy.deepcopy(self._event(type, obj, previous_attributes=previous_attributes))

    def send_event(
        self,
        type: str,
        obj: Mapping[str, Any],
        *,
        to: str | None = None,
        previous_attributes: Mapping[str, Any] | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int | None, str]:
        """Make an Event wrapping ``obj``, sign it and POST it; returns (status, response body)."""
        event = self.event(type, obj, previous_attributes=previous_attributes)
        return self.deliver(event, to=to, secret=secret, timestamp=timestamp)

    def deliver(
        self,
        event: Mapping[str, Any],
        *,
        to: str | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[int | None, str]:
        """Sign and POST a prepared event (again: redelivery keeps its id); (status, body).

        ``status`` is None when the connection failed (the body is then the error).
        """
        url = to or self.webhook_url
        if not url:
            raise ValueError("no webhook URL: set fake.webhook_url or pass to=")
        body, header = signed_payload(
            event, secret if secret is not None else self.webhook_secret, timestamp=timestamp
        )
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": header,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Cache-Control": "no-cache",
            "Accept": "*/*; q=0.5, application/xml",
        }
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL must be http(s): {url!r}")
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        status: int | None
        error: str | None = None
        try:
            with opener.open(request, timeout=30) as response:
                status, text = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError) as exc:
            status, text, error = None, str(exc), repr(exc)
        with self._lock:
            self._deliveries.append(
                Delivery(
                    event=copy.deepcopy(dict(event)),
                    url=url,
                    status=status,
                    body=text,
                    error=error,
                    at=time.time(),
                    headers=headers,
                )
            )
        if self.verbose:
            sys.stderr.write(f"fake-stripe: webhook {event['type']} -> {url}: {status}\n")
        return status, text

    def fail_next(
        self,
        path: str,
        *,
        method: str | None = "POST",
        status: int = 500,
        times: int | None = 1,
        message: str | None = None,
        error_type: str | None = None,
        code: str | None = None,
    ) -> None:
        """Answer the next ``times`` API requests to ``path`` (glob allowed) with an error.

        Such answers are not stored for idempotent replay. Mind that the stripe library retries
        5xx and 409 answers ``max_network_retries`` times (default 2 globally, 0 for StripeClient).
        """
        kind = error_type or ("api_error" if status >= 500 else "invalid_request_error")
        with self._lock:
            self._failures.append(
                _Failure(
                    pattern=path,
                    method=method.upper() if method else None,
                    status=status,
                    times=times,
                    error=StripeError(
                        status, message or f"Scripted failure ({status}).", type=kind, code=code
                    ),
                )
            )

    # -- state internals (call with the lock held) -----------------------------------------------

    def _event(
        self,
        type: str,
        obj: Mapping[str, Any],
        *,
        previous_attributes: Mapping[str, Any] | None = None,
        request: RecordedRequest | None = None,
    ) -> dict[str, Any]:
        event = make_event(
            type,
            obj,
            previous_attributes=previous_attributes,
            request_id=request.request_id if request else None,
            idempotency_key=request.idempotency_key if request else None,
        )
        self._events.append(event)
        return copy.deepcopy(event)

    def _new_customer(
        self, params: Mapping[str, Any], *, customer_id: str | None = None
    ) -> dict[str, Any]:
        cus = {
            "id": customer_id or _new_id("cus_", 14),
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": int(time.time()),
            "currency": None,
            "default_source": None,
            "delinquent": False,
            "description": params.get("description"),
            "email": params.get("email"),
            "invoice_prefix": _new_id("", 8).upper(),
            "livemode": False,
            "metadata": {k: v for k, v in (params.get("metadata") or {}).items() if v != ""},
            "name": params.get("name"),
            "phone": params.get("phone"),
            "preferred_locales": list(params.get("preferred_locales") or []),
            "tax_exempt": "none",
            "test_clock": None,
        }
        self._customers[cus["id"]] = cus
        return cus

    def _new_subscription(
        self,
        *,
        customer: str,
        price: str,
        quantity: int,
        metadata: dict[str, Any],
        status: str,
        subscription_id: str | None = None,
    ) -> dict[str, Any]:
        now = int(time.time())
        sub_id = subscription_id or _new_id("sub_")
        item = {
            "id": _new_id("si_", 14),
            "object": "subscription_item",
            "created": now,
            "current_period_end": now + PERIOD_SECONDS,
            "current_period_start": now,
            "metadata": {},
            "price": copy.deepcopy(self._prices[price]),
            "quantity": quantity,
            "subscription": sub_id,
        }
        sub = {
            "id": sub_id,
            "object": "subscription",
            "billing_cycle_anchor": now,
            "cancel_at": None,
            "cancel_at_period_end": False,
            "canceled_at": None,
            "cancellation_details": {"comment": None, "feedback": None, "reason": None},
            "collection_method": "charge_automatically",
            "created": now,
            "currency": self._prices[price]["currency"],
            "current_period_end": now + PERIOD_SECONDS,
            "current_period_start": now,
            "customer": customer,
            "ended_at": None,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "total_count": 1,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
            "latest_invoice": None,
            "livemode": False,
            "metadata": {k: v for k, v in metadata.items() if v != ""},
            "pause_collection": None,
            "start_date": now,
            "status": "active",
            "trial_end": None,
            "trial_start": None,
        }
        self._subscriptions[sub_id] = sub
        self._set_status(sub, status)
        if status in ("active", "trialing", "past_due"):
            sub["latest_invoice"] = self._new_invoice(
                sub, paid=status != "past_due", billing_reason="subscription_create"
            )["id"]
        return sub

    def _new_invoice(self, sub: dict[str, Any], *, paid: bool, billing_reason: str) -> dict:
        item = sub["items"]["data"][0]
        amount = item["price"]["unit_amount"] * item["quantity"]
        inv = {
            "id": _new_id("in_"),
            "object": "invoice",
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount,
            "attempt_count": 1,
            "billing_reason": billing_reason,
            "created": int(time.time()),
            "currency": sub["currency"],
            "customer": sub["customer"],
            "livemode": False,
            "parent": {
                "quote_details": None,
                "subscription_details": {
                    "metadata": dict(sub["metadata"]),
                    "subscription": sub["id"],
                },
                "type": "subscription_details",
            },
            "period_end": item["current_period_end"],
            "period_start": item["current_period_start"],
            "status": "paid" if paid else "open",
            "subscription": sub["id"],
        }
        self._invoices[inv["id"]] = inv
        return inv

    @staticmethod
    def _set_period_end(sub: dict[str, Any], end: int) -> None:
        sub["current_period_end"] = int(end)
        for item in sub["items"]["data"]:
            item["current_period_end"] = int(end)
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = int(end)

    def _set_price(self, sub: dict[str, Any], price: str, quantity: int | None) -> None:
        if price not in self._prices:
            raise _missing("price", price, status=400, param="items[0][price]")
        item = sub["items"]["data"][0]
        item["price"] = copy.deepcopy(self._prices[price])
        if quantity is not None:
            item["quantity"] = int(quantity)

    @staticmethod
    def _set_status(sub: dict[str, Any], status: str) -> None:
        now = int(time.time())
        sub["status"] = status
        if status == "canceled":
            sub["canceled_at"] = sub["canceled_at"] or now
            sub["ended_at"] = sub["ended_at"] or now
            sub["cancel_at_period_end"] = False
            sub["cancellation_details"]["reason"] = (
                sub["cancellation_details"]["reason"] or "cancellation_requested"
            )
        elif status == "trialing":
            sub["trial_start"] = sub["trial_start"] or now
            sub["trial_end"] = sub["trial_end"] or sub["current_period_end"]
        if status == "paused":
            sub["pause_collection"] = None

    def _get_customer(self, cid: Any, *, status: int, param: str | None) -> dict[str, Any]:
        cus = self._customers.get(cid) if isinstance(cid, str) else None
        if cus is None:
            raise _missing("customer", str(cid), status=status, param=param)
        return cus

    def _get_subscription(self, sid: Any, *, status: int, param: str | None) -> dict[str, Any]:
        sub = self._subscriptions.get(sid) if isinstance(sid, str) else None
        if sub is None:
            raise _missing("subscription", str(sid), status=status, param=param)
        return sub

    def _expand(self, obj: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        expand = params.get("expand") or []
        if isinstance(expand, str):
            expand = [expand]
        for path in expand:
            name = str(path).split(".", 1)[0]
            value = out.get(name)
            if name == "line_items" and out.get("object") == "checkout.session":
                data = copy.deepcopy(self._line_items.get(out["id"], []))
                out["line_items"] = {
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "url": f"/v1/checkout/sessions/{out['id']}/line_items",
                }
            elif isinstance(value, str):
                for store in (self._customers, self._subscriptions, self._invoices, self._prices):
                    if value in store:
                        out[name] = copy.deepcopy(store[value])
                        break
        return out

    def _complete(self, session_id: str, *, status: str = "active") -> list[dict[str, Any]]:
        session = self._sessions.get(session_id)
        if session is None:
            raise _missing("checkout.session", session_id, status=404, param=None)
        if session["status"] != "open":
            raise StripeError(400, f"This Checkout Session is {session['status']}.")
        if session["customer"] is None:
            session["customer"] = self._new_customer(
                {"email": session.get("customer_email") or "customer@example.com"}
            )["id"]
        line = self._line_items[session_id][0]
        sub = self._new_subscription(
            customer=session["customer"],
            price=line["price"]["id"],
            quantity=line["quantity"],
            metadata=dict(self._subscription_data.get(session_id, {}).get("metadata") or {}),
            status=status,
        )
        session["status"] = "complete"
        session["payment_status"] = {"active": "paid", "trialing": "no_payment_required"}.get(
            status, "unpaid"
        )
        session["subscription"] = sub["id"]
        session["invoice"] = sub["latest_invoice"]
        cus = self._customers[session["customer"]]
        session["customer_details"] = {
            "email": cus.get("email"),
            "name": cus.get("name"),
            "phone": None,
            "address": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }
        events = []
        for kind in self.checkout_events:
            if kind == "checkout.session.completed":
                events.append(self._event(kind, session))
            elif kind == "customer.subscription.created":
                events.append(self._event(kind, sub))
            elif kind == "invoice.paid":
                if sub["latest_invoice"]:
                    events.append(self._event(kind, self._invoices[sub["latest_invoice"]]))
            else:
                raise ValueError(f"checkout_events cannot name {kind!r}")
        return events

    # -- delivery -------------------------------------------------------------------------------

    def _deliver_all(self, events: list[dict[str, Any]], to: str | None) -> None:
        if not (to or self.webhook_url):
            return
        for event in events:
            self.deliver(event, to=to)

    def _deliver_later(self, events: list[dict[str, Any]]) -> threading.Thread | None:
        """A registered (so ``flush`` waits for it) but not yet started sender of ``events``."""
        if not (events and self.webhook_url and self.api_webhooks):
            return None
        thread = threading.Thread(
            target=self._deliver_all, args=(events, None), name="fake-stripe-webhooks", daemon=True
        )
        with self._lock:
            self._senders.append(thread)
        return thread

    # -- HTTP -----------------------------------------------------------------------------------

    def _handle(self, handler: _Handler) -> None:
        split = urlsplit(handler.path)
        body = handler.read_body()
        headers = {k.lower(): v for k, v in handler.headers.items()}
        method = handler.command.upper()
        ctype = headers.get("content-type", "")
        if method == "POST" and "json" in ctype:
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
        elif method == "POST":
            params = parse_form(body)
        else:
            params = parse_form(split.query)
        record = RecordedRequest(
            method=method,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            params=params if isinstance(params, dict) else {},
            headers=headers,
            body=body,
            at=time.time(),
            request_id=_new_id("req_", 14),
        )
        with self._lock:
            self._requests.append(record)
        try:
            if split.path.startswith("/v1/"):
                answer, later = self._api(record)
            else:
                answer, later = self._hosted(record)
        except Exception:
            with self._lock:
                self._errors.append(traceback.format_exc())
            answer, later = (
                self._error_answer(StripeError(500, "Fake Stripe bug.", type="api_error")),
                [],
            )
        record.status = answer.status
        if not answer.html:
            record.response = answer.body
        sender = self._deliver_later(later)  # registered before answering, started after
        try:
            self._send(handler, answer, record)
        finally:
            if sender is not None:
                sender.start()

    def _send(self, handler: _Handler, answer: _Answer, record: RecordedRequest) -> None:
        if answer.html:
            payload = str(answer.body).encode("utf-8")
            ctype = "text/html; charset=utf-8"
        else:
            payload = json.dumps(answer.body, indent=2).encode("utf-8")
            ctype = "application/json"
        handler.send_response(answer.status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Request-Id", record.request_id)
        if not answer.html:
            handler.send_header("Stripe-Version", record.headers.get("stripe-version", API_VERSION))
            if record.idempotency_key:
                handler.send_header("Idempotency-Key", record.idempotency_key)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if record.method != "HEAD":
            with contextlib.suppress(ConnectionError):
                handler.wfile.write(payload)

    @staticmethod
    def _error_answer(error: StripeError) -> _Answer:
        headers = {}
        if error.status < 500:
            headers["Stripe-Should-Retry"] = "false"
        return _Answer(error.status, {"error": dict(error.body)}, headers)

    def _auth(self, record: RecordedRequest) -> StripeError | None:
        auth = record.headers.get("authorization", "")
        if not auth:
            return StripeError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, "
                "or we can help at https://support.stripe.com/.",
            )
        key = record.api_key or ""
        ok = key.startswith(("sk_test_", "rk_test_")) and len(key) > 8
        if self.api_key is not None:
            ok = key == self.api_key
        if not ok:
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:] if len(key) > 12 else key
            return StripeError(401, f"Invalid API Key provided: {shown}")
        return None

    def _api(self, record: RecordedRequest) -> tuple[_Answer, list[dict[str, Any]]]:
        error = self._auth(record)
        if error is not None:
            return self._error_answer(error), []
        with self._lock:
            key = record.idempotency_key if record.method == "POST" else None
            if key:
                self._idempotency_keys.setdefault(record.path, []).append(key)
            for failure in self._failures:
                if self._path_matches(failure.pattern, record.path) and (
                    failure.method is None or failure.method == record.method
                ):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return self._error_answer(failure.error), []
            if key:
                stored = self._idempotency.get(key)
                if stored is not None:
                    method, path, params, answer, _ = stored
                    if (method, path) != (record.method, record.path):
                        return self._error_answer(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used for the same "
                                f"endpoint they were first used for ('{method} {path}' vs "
                                f"'{record.method} {record.path}'). Try using a key other than "
                                f"'{key}' if you meant to execute a different request.",
                                type="idempotency_error",
                            )
                        ), []
                    if params != record.params:
                        return self._error_answer(
                            StripeError(
                                400,
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{key}' if you meant to execute a different request.",
                                type="idempotency_error",
                            )
                        ), []
                    record.replayed = True
                    return _Answer(
                        answer.status,
                        copy.deepcopy(answer.body),
                        {**answer.headers, "Idempotent-Replayed": "true"},
                    ), []
            later: list[dict[str, Any]] = []
            try:
                status, body = self._route(record, later)
                answer = _Answer(status, body)
            except StripeError as exc:
                return self._error_answer(exc), []
            if key and 200 <= answer.status < 300:
                self._idempotency[key] = (
                    record.method,
                    record.path,
                    copy.deepcopy(record.params),
                    copy.deepcopy(answer),
                    record.request_id,
                )
            return answer, later

    def _route(self, r: RecordedRequest, later: list[dict[str, Any]]) -> tuple[int, Any]:
        m, path, p = r.method, r.path.rstrip("/"), r.params
        parts = path.split("/")[2:]  # after "/v1"
        if parts == ["customers"] and m == "POST":
            self._check_params(p, _CUSTOMER_PARAMS)
            return 200, self._expand(self._new_customer(p), p)
        if parts == ["customers"] and m == "GET":
            self._check_params(p, _LIST_PARAMS | {"email", "created", "test_clock"})
            found = [c for c in self._customers.values() if p.get("email") in (None, c["email"])]
            return 200, self._list(found, "/v1/customers", p)
        if len(parts) == 2 and parts[0] == "customers" and m == "DELETE":
            # Stripe: deleting a customer cancels its subscriptions at once; it is then gone.
            cus = self._get_customer(parts[1], status=404, param="id")
            for sub in self._subscriptions.values():
                if sub["customer"] == cus["id"] and sub["status"] != "canceled":
                    self._set_status(sub, "canceled")
                    later.append(self._event("customer.subscription.deleted", sub, request=r))
            del self._customers[cus["id"]]
            later.append(self._event("customer.deleted", cus, request=r))
            return 200, {"id": cus["id"], "object": "customer", "deleted": True}
        if len(parts) == 2 and parts[0] == "customers" and m in ("GET", "POST"):
            cus = self._get_customer(parts[1], status=404, param="id")
            if m == "POST":
                self._check_params(p, _CUSTOMER_PARAMS)
                for name in ("email", "name", "description", "phone"):
                    if name in p:
                        cus[name] = p[name] or None
                self._merge_metadata(cus, p)
            return 200, self._expand(cus, p)
        if parts == ["checkout", "sessions"] and m == "POST":
            return 200, self._create_checkout(r)
        if len(parts) == 3 and parts[:2] == ["checkout", "sessions"] and m == "GET":
            session = self._sessions.get(parts[2])
            if session is None:
                raise _missing("checkout.session", parts[2], status=404, param="session")
            return 200, self._expand(session, p)
        if len(parts) == 4 and parts[:2] == ["checkout", "sessions"] and parts[3] == "expire":
            session = self._sessions.get(parts[2]) if m == "POST" else None
            if session is None:
                raise _missing("checkout.session", parts[2], status=404, param="session")
            if session["status"] != "open":
                raise StripeError(
                    400,
                    f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f'Checkout Session has a status of "{session["status"]}".',
                )
            session["status"] = "expired"
            session["url"] = None
            return 200, self._expand(session, p)
        if parts == ["billing_portal", "sessions"] and m == "POST":
            self._check_params(p, _PORTAL_PARAMS)
            if "customer" not in p:
                raise StripeError(
                    400,
                    "Missing required param: customer.",
                    code="parameter_missing",
                    param="customer",
                )
            self._get_customer(p["customer"], status=400, param="customer")
            bps_id = _new_id("bps_")
            portal = {
                "id": bps_id,
                "object": "billing_portal.session",
                "configuration": p.get("configuration") or "bpc_fakeconfiguration0",
                "created": int(time.time()),
                "customer": p["customer"],
                "flow": None,
                "livemode": False,
                "locale": p.get("locale"),
                "on_behalf_of": None,
                "return_url": p.get("return_url"),
                "url": f"{self.base_url}/portal/{bps_id}",
            }
            self._portals[bps_id] = portal
            return 200, self._expand(portal, p)
        if parts == ["subscriptions"] and m == "GET":
            self._check_params(p, _LIST_PARAMS | {"customer", "status", "price", "created"})
            wanted = p.get("status")
            subs = [
                s
                for s in self._subscriptions.values()
                if p.get("customer") in (None, s["customer"])
                and p.get("price") in (None, s["items"]["data"][0]["price"]["id"])
                and (
                    s["status"] == wanted
                    if wanted not in (None, "all")
                    else wanted == "all" or s["status"] not in ("canceled", "incomplete_expired")
                )
            ]
            return 200, self._list(subs, "/v1/subscriptions", p)
        if len(parts) == 2 and parts[0] == "subscriptions":
            sub = self._get_subscription(parts[1], status=404, param="id")
            if m == "GET":
                return 200, self._expand(sub, p)
            if m == "POST":
                return 200, self._update_subscription(r, sub, later)
            if m == "DELETE":
                self._check_params(p, _SUBSCRIPTION_CANCEL_PARAMS)
                if sub["status"] == "canceled":
                    raise StripeError(
                        404,
                        f"No such subscription: '{sub['id']}'; a similar object exists in test "
                        "mode, but it has been canceled.",
                        code="resource_missing",
                        param="id",
                    )
                self._set_status(sub, "canceled")
                later.append(self._event("customer.subscription.deleted", sub, request=r))
                return 200, self._expand(sub, p)
        if len(parts) == 2 and parts[0] == "prices" and m == "GET":
            price = self._prices.get(parts[1])
            if price is None:
                raise _missing("price", parts[1], status=404, param="id")
            return 200, copy.deepcopy(price)
        if len(parts) == 2 and parts[0] == "events" and m == "GET":
            for event in self._events:
                if event["id"] == parts[1]:
                    return 200, copy.deepcopy(event)
            raise _missing("event", parts[1], status=404, param="id")
        raise StripeError(
            404,
            f"Unrecognized request URL ({m}: {r.path}). Please see https://stripe.com/docs or "
            "we can help at https://support.stripe.com/.",
        )

    @staticmethod
    def _check_params(params: Mapping[str, Any], allowed: set[str]) -> None:
        for name in params:
            if name not in allowed:
                raise StripeError(400, f"Received unknown parameter: {name}", param=name)

    @staticmethod
    def _merge_metadata(obj: dict[str, Any], params: Mapping[str, Any]) -> None:
        if "metadata" not in params:
            return
        meta = params["metadata"]
        if meta == "":  # metadata="" clears everything
            obj["metadata"] = {}
            return
        if not isinstance(meta, dict):
            raise StripeError(400, "Invalid object", param="metadata")
        for k, v in meta.items():
            if v == "":
                obj["metadata"].pop(k, None)
            else:
                obj["metadata"][k] = v

    def _list(self, items: list[dict[str, Any]], url: str, params: Mapping[str, Any]) -> dict:
        items = sorted(items, key=lambda o: o.get("created", 0), reverse=True)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        try:
            limit = max(1, min(100, int(params.get("limit") or 10)))
        except ValueError as exc:
            raise StripeError(400, "Invalid integer: limit", param="limit") from exc
        return {
            "object": "list",
            "data": [self._expand(o, {"expand": self._sub_expand(params)}) for o in items[:limit]],
            "has_more": len(items) > limit,
            "url": url,
        }

    @staticmethod
    def _sub_expand(params: Mapping[str, Any]) -> list[str]:
        expand = params.get("expand") or []
        return [e[5:] for e in expand if isinstance(e, str) and e.startswith("data.")]

    def _create_checkout(self, r: RecordedRequest) -> dict[str, Any]:
        p = r.params
        self._check_params(p, _CHECKOUT_PARAMS)
        mode = p.get("mode")
        if not mode:
            raise StripeError(
                400, "Missing required param: mode.", code="parameter_missing", param="mode"
            )
        if mode != "subscription":
            raise StripeError(
                400,
                f"The fake Stripe only does mode=subscription (got {mode!r}).",
                param="mode",
            )
        if p.get("ui_mode") not in (None, "hosted"):
            raise StripeError(400, "The fake Stripe only does ui_mode=hosted.", param="ui_mode")
        if not p.get("success_url"):
            raise StripeError(
                400,
                "Missing required param: success_url.",
                code="parameter_missing",
                param="success_url",
            )
        lines = p.get("line_items")
        if not isinstance(lines, list) or not lines:
            raise StripeError(
                400,
                "You must provide at least one recurring price in `subscription` mode when using "
                "prices.",
                param="line_items",
            )
        customer = p.get("customer")
        if customer is not None:
            self._get_customer(customer, status=400, param="customer")
            if p.get("customer_email"):
                raise StripeError(
                    400,
                    "You may only specify one of these parameters: customer, customer_email.",
                    param="customer_email",
                )
        session_id = _new_id("cs_test_", 58)
        items = []
        for i, line in enumerate(lines):
            if not isinstance(line, dict) or not line.get("price"):
                raise StripeError(
                    400,
                    f"Missing required param: line_items[{i}][price].",
                    code="parameter_missing",
                    param=f"line_items[{i}][price]",
                )
            price = self._prices.get(line["price"])
            if price is None:
                raise _missing("price", line["price"], status=400, param=f"line_items[{i}][price]")
            try:
                quantity = int(line.get("quantity", 1))
            except ValueError as exc:
                raise StripeError(
                    400, "Invalid integer", param=f"line_items[{i}][quantity]"
                ) from exc
            items.append(
                {
                    "id": _new_id("li_"),
                    "object": "item",
                    "amount_subtotal": price["unit_amount"] * quantity,
                    "amount_total": price["unit_amount"] * quantity,
                    "currency": price["currency"],
                    "description": price["nickname"] or price["id"],
                    "price": copy.deepcopy(price),
                    "quantity": quantity,
                }
            )
        sub_data = p.get("subscription_data") or {}
        if not isinstance(sub_data, dict):
            raise StripeError(400, "Invalid object", param="subscription_data")
        now = int(time.time())
        total = sum(item["amount_total"] for item in items)
        session = {
            "id": session_id,
            "object": "checkout.session",
            "allow_promotion_codes": _truthy(p["allow_promotion_codes"])
            if "allow_promotion_codes" in p
            else None,
            "amount_subtotal": total,
            "amount_total": total,
            "cancel_url": p.get("cancel_url"),
            "client_reference_id": p.get("client_reference_id"),
            "created": now,
            "currency": items[0]["currency"],
            "customer": customer,
            "customer_details": None,
            "customer_email": p.get("customer_email"),
            "expires_at": now + 24 * 3600,
            "invoice": None,
            "livemode": False,
            "locale": p.get("locale"),
            "metadata": {k: v for k, v in (p.get("metadata") or {}).items() if v != ""},
            "mode": "subscription",
            "payment_status": "unpaid",
            "status": "open",
            "subscription": None,
            "success_url": p["success_url"],
            "ui_mode": "hosted",
            "url": f"{self.base_url}/checkout/{session_id}",
        }
        self._sessions[session_id] = session
        self._line_items[session_id] = items
        self._subscription_data[session_id] = copy.deepcopy(sub_data)
        return self._expand(session, p)

    def _update_subscription(
        self, r: RecordedRequest, sub: dict[str, Any], later: list[dict[str, Any]]
    ) -> dict[str, Any]:
        p = r.params
        self._check_params(p, _SUBSCRIPTION_UPDATE_PARAMS)
        if sub["status"] == "canceled" and set(p) - {"metadata", "cancellation_details", "expand"}:
            raise StripeError(
                400,
                "A canceled subscription can only update its cancellation_details and metadata.",
            )
        before = copy.deepcopy(sub)
        if "cancel_at_period_end" in p:
            flag = _truthy(p["cancel_at_period_end"])
            sub["cancel_at_period_end"] = flag
            sub["cancel_at"] = sub["current_period_end"] if flag else None
            sub["canceled_at"] = int(time.time()) if flag else None
        items = p.get("items")
        if items:
            if not isinstance(items, list) or not isinstance(items[0], dict):
                raise StripeError(400, "Invalid array", param="items")
            first = items[0]
            current = sub["items"]["data"][0]
            if first.get("id") not in (None, current["id"]):
                raise StripeError(
                    400,
                    f"No such subscription item: '{first['id']}'",
                    code="resource_missing",
                    param="items[0][id]",
                )
            if first.get("price"):
                self._set_price(sub, first["price"], None)
            if "quantity" in first:
                sub["items"]["data"][0]["quantity"] = int(first["quantity"])
        self._merge_metadata(sub, p)
        if isinstance(p.get("cancellation_details"), dict):
            details = p["cancellation_details"]
            for name in ("comment", "feedback"):
                if name in details:
                    sub["cancellation_details"][name] = details[name] or None
        changed = _previous_attributes(before, sub)
        if changed:
            later.append(
                self._event(
                    "customer.subscription.updated", sub, previous_attributes=changed, request=r
                )
            )
        return self._expand(sub, p)

    # -- hosted pages ---------------------------------------------------------------------------

    def _hosted(self, r: RecordedRequest) -> tuple[_Answer, list[dict[str, Any]]]:
        parts = [x for x in r.path.split("/") if x]
        if r.path in ("/", "") and r.method == "GET":
            return _Answer(
                200, _page("Fake Stripe", "<p>Fake Stripe is running.</p>"), html=True
            ), []
        if len(parts) >= 2 and parts[0] == "checkout":
            return self._checkout_page(r, parts[1], parts[2:]), []
        if len(parts) >= 2 and parts[0] == "portal":
            return self._portal_page(r, parts[1], parts[2:]), []
        return _Answer(404, _page("Not found", "<p>No such page.</p>"), html=True), []

    def _checkout_page(self, r: RecordedRequest, session_id: str, rest: list[str]) -> _Answer:
        with self._lock:
            session = copy.deepcopy(self._sessions.get(session_id))
            items = copy.deepcopy(self._line_items.get(session_id, []))
            email = None
            if session and session["customer"] in self._customers:
                email = self._customers[session["customer"]]["email"]
        if session is None:
            return _Answer(404, _page("Not found", "<p>No such Checkout Session.</p>"), html=True)
        if rest == [] and r.method == "GET":
            if session["status"] != "open":
                link = _link(_fill(session["success_url"], session_id), "Continue")
                text = f"<p>This Checkout Session is {html.escape(session['status'])}.</p>{link}"
                return _Answer(200, _page("Checkout", text), html=True)
            lines = "".join(
                f"<li>{html.escape(i['description'])} &times; {i['quantity']}: "
                f"{i['amount_total'] / 100:.2f} {i['currency'].upper()} / month</li>"
                for i in items
            )
            cancel = (
                _link(session["cancel_url"], "Back", id_="cancel") if session["cancel_url"] else ""
            )
            body = (
                f"<p>Subscribe{' as ' + html.escape(email) if email else ''}</p><ul>{lines}</ul>"
                f'<form method="post" action="/checkout/{session_id}/pay">'
                '<input type="hidden" name="status" value="active">'
                '<button type="submit" id="pay">Pay with test card</button></form>'
                f"{cancel}"
            )
            return _Answer(200, _page("Checkout", body), html=True)
        if rest == ["pay"] and r.method == "POST":
            status = r.params.get("status") or "active"
            if status not in SUBSCRIPTION_STATUSES:
                return _Answer(400, _page("Checkout", "<p>Unknown status.</p>"), html=True)
            try:
                with self._lock:
                    events = self._complete(session_id, status=status)
            except StripeError as exc:
                return _Answer(400, _page("Checkout", f"<p>{html.escape(str(exc))}</p>"), html=True)
            self._deliver_all(events, None)  # before redirecting, so the success page sees them
            target = _fill(session["success_url"], session_id)
            return _Answer(
                303, _page("Redirecting", _link(target, target)), {"Location": target}, html=True
            )
        return _Answer(405, _page("Checkout", "<p>Method not allowed.</p>"), html=True)

    def _portal_page(self, r: RecordedRequest, portal_id: str, rest: list[str]) -> _Answer:
        with self._lock:
            portal = copy.deepcopy(self._portals.get(portal_id))
            if portal is None:
                return _Answer(404, _page("Not found", "<p>No such portal session.</p>"), html=True)
            subs = [
                s
                for s in self._subscriptions.values()
                if s["customer"] == portal["customer"]
                and s["status"] not in ("canceled", "incomplete_expired")
            ]
            sub = max(subs, key=lambda s: s["created"]) if subs else None
            prices = copy.deepcopy(self._prices)
            snapshot = copy.deepcopy(sub)
        back = portal["return_url"]
        if rest == [] and r.method == "GET":
            if snapshot is None:
                body = "<p>No active subscription.</p>"
            else:
                price = snapshot["items"]["data"][0]["price"]
                ends = time.strftime("%Y-%m-%d", time.gmtime(snapshot["current_period_end"]))
                body = (
                    f"<p>Plan: {html.escape(price['nickname'] or price['id'])} "
                    f"({html.escape(snapshot['status'])}"
                    f"{', cancels ' + ends if snapshot['cancel_at_period_end'] else ''}), "
                    f"renews {ends}</p>"
                    + _button(f"/portal/{portal_id}/cancel", "Cancel subscription", "cancel")
                    + _button(
                        f"/portal/{portal_id}/cancel-at-period-end",
                        "Cancel at period end",
                        "cancel-at-period-end",
                    )
                    + "".join(
                        _button(
                            f"/portal/{portal_id}/switch",
                            f"Switch to {pr['nickname'] or pid}",
                            f"switch-{(pr['nickname'] or pid).lower()}",
                            {"price": pid},
                        )
                        for pid, pr in prices.items()
                        if pid != price["id"]
                    )
                )
            if back:
                body += _link(back, "Return", id_="return")
            return _Answer(200, _page("Billing portal", body), html=True)
        if r.method != "POST" or rest not in (["cancel"], ["cancel-at-period-end"], ["switch"]):
            return _Answer(405, _page("Billing portal", "<p>Method not allowed.</p>"), html=True)
        if sub is None:
            return _Answer(
                400, _page("Billing portal", "<p>No active subscription.</p>"), html=True
            )
        try:
            if rest == ["cancel"]:
                self.subscription(sub["id"], status="canceled", notify=True)
            elif rest == ["cancel-at-period-end"]:
                self.subscription(sub["id"], cancel_at_period_end=True, notify=True)
            else:
                self.subscription(sub["id"], price=str(r.params.get("price")), notify=True)
        except StripeError as exc:
            return _Answer(
                400, _page("Billing portal", f"<p>{html.escape(str(exc))}</p>"), html=True
            )
        target = back or f"/portal/{portal_id}"
        return _Answer(
            303, _page("Redirecting", _link(target, target)), {"Location": target}, html=True
        )


def _fill(url: str, session_id: str) -> str:
    return url.replace("{CHECKOUT_SESSION_ID}", session_id)


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)} - Fake Stripe</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _link(url: str, text: str, *, id_: str | None = None) -> str:
    ident = f' id="{html.escape(id_)}"' if id_ else ""
    return f'<p><a{ident} href="{html.escape(url)}">{html.escape(text)}</a></p>'


def _button(action: str, text: str, id_: str, fields: Mapping[str, str] | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in (fields or {}).items()
    )
    return (
        f'<form method="post" action="{html.escape(action)}">{hidden}'
        f'<button type="submit" id="{html.escape(id_)}">{html.escape(text)}</button></form>'
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: FakeStripe

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        self.fake._errors.append(traceback.format_exc())
        super().handle_error(request, client_address)


class _Handler(LoopbackHandler):
    label = "fake-stripe"
    server: _Server


try:  # a pytest fixture for test modules that import it; the fake itself does not need pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def fake_stripe(settings: Any) -> Iterator[FakeStripe]:
        """A running FakeStripe with Django's STRIPE_* settings pointing at it.

        STRIPE_API_BASE = fake.base_url, STRIPE_SECRET_KEY = "sk_test_fake", STRIPE_WEBHOOK_SECRET =
        fake.webhook_secret, STRIPE_PRICE_PLUS/GROWTH = "price_plus"/"price_growth". Set
        ``fake.webhook_url`` (e.g. ``live_server.url + "/billing/webhook/"``) to receive webhooks.
        """
        with FakeStripe() as fake:
            settings.STRIPE_API_BASE = fake.base_url
            settings.STRIPE_SECRET_KEY = FAKE_API_KEY
            settings.STRIPE_WEBHOOK_SECRET = fake.webhook_secret
            settings.STRIPE_PRICE_PLUS = "price_plus"
            settings.STRIPE_PRICE_GROWTH = "price_growth"
            yield fake


def _parse_price(text: str) -> tuple[str, str]:
    price_id, _, nickname = text.partition("=")
    return price_id, nickname or price_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.fake_stripe",
        description="Serve a fake of the Stripe endpoints Sheaf calls, with hosted-page stand-ins.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091, help="0 picks a free port")
    parser.add_argument("--webhook-url", help="where to POST signed events")
    parser.add_argument("--webhook-secret", default=DEFAULT_WEBHOOK_SECRET)
    parser.add_argument(
        "--price",
        action="append",
        type=_parse_price,
        metavar="ID[=NAME]",
        help="a known price (repeatable; default price_plus=Plus and price_growth=Growth)",
    )
    parser.add_argument("--api-key", help="accept only this key (default: any sk_test_ key)")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    fake = FakeStripe(
        args.host,
        args.port,
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        prices=dict(args.price) if args.price else None,
        api_key=args.api_key,
        verbose=args.verbose,
    )
    fake.start()
    print(fake.base_url, flush=True)
    prices = list(fake.prices)
    sys.stderr.write(
        "fake-stripe: point Sheaf at it with\n"
        f"  STRIPE_API_BASE={fake.base_url} STRIPE_SECRET_KEY={args.api_key or FAKE_API_KEY} "
        f"STRIPE_WEBHOOK_SECRET={fake.webhook_secret}"
        + (f" STRIPE_PRICE_PLUS={prices[0]}" if prices else "")
        + (f" STRIPE_PRICE_GROWTH={prices[1]}" if len(prices) > 1 else "")
        + f"\n  webhooks go to {fake.webhook_url or '(nowhere: no --webhook-url)'}\n"
    )
    sys.stderr.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
