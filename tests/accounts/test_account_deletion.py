"""Deleting an account from /settings/: everything the user owns goes, files included; a live
Stripe subscription is canceled first; other users and in-flight workers are unaffected
(accounts/services.py `user_delete`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from accounts.billing.services import customer_ensure, subscription_sync
from accounts.models import ApiKey, MonthlyUsage, Submission, Subscription, User
from accounts.services import api_key_create
from batches import pipeline
from batches.models import BatchProcess
from documents.models import Document
from extraction.contract import ErrorKind, ExtractionError
from tests.support.billing import run_queued_stripe_events
from tests.support.fake_stripe import (
    FakeStripe,
    fake_stripe,  # noqa: F401 - the fixture, used by `fake`
    signed_payload,
)

pytestmark = pytest.mark.django_db

DELETE_URL = "/settings/delete/"


def upload(client: Client, *names: str) -> BatchProcess:
    files = [SimpleUploadedFile(name, f"Invoice number: {name}\n".encode()) for name in names]
    form = {"prompt": "invoice number", "fields": "", "mode": "standard"}
    response = client.post("/dashboard/batch-upload/", {**form, "files": files})
    assert response.status_code == 302, response.content.decode()
    return BatchProcess.objects.order_by("-created_at").first()


def files_of(media: Path, user: User) -> list[Path]:
    return sorted(p for p in (media / "uploads" / str(user.pk)).rglob("*") if p.is_file())


@pytest.fixture
def accounts(alice, bob, alice_client, bob_client, _media_root) -> dict[str, object]:
    """Alice and Bob, each with a batch of two uploaded files and an API key."""
    alice_batch = upload(alice_client, "a-1.txt", "a-2.txt")
    bob_batch = upload(bob_client, "b-1.txt", "b-2.txt")
    _, alice_key = api_key_create(user=alice, name="alice's import")
    _, bob_key = api_key_create(user=bob, name="bob's import")
    assert len(files_of(_media_root, alice)) == 2
    return {
        "alice_batch": alice_batch,
        "bob_batch": bob_batch,
        "alice_key": alice_key,
        "bob_key": bob_key,
    }


def test_deleting_my_account_removes_everything_i_own_and_logs_me_out(
    alice, bob, alice_client, accounts, _media_root, client, django_capture_on_commit_callbacks
):
    alice_id = alice.pk
    assert MonthlyUsage.objects.filter(user_id=alice_id).exists()
    assert Submission.objects.filter(user_id=alice_id).exists()

    # Files go once the rows' deletion has committed.
    with django_capture_on_commit_callbacks(execute=True):
        response = alice_client.post(DELETE_URL, {"email": "Alice@Example.com "}, follow=True)

    assert response.redirect_chain == [("/", 302)]
    assert "Your account, its batches and its files were deleted." in response.content.decode()
    assert not User.objects.filter(pk=alice_id).exists()
    for model in (BatchProcess, Document, ApiKey, MonthlyUsage, Submission):
        assert not model.objects.filter(user_id=alice_id).exists(), model.__name__
    assert files_of(_media_root, alice) == []
    # Logged out, and the API key is dead.
    assert alice_client.get("/dashboard/").status_code == 302
    me = client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {accounts['alice_key']}")
    assert me.status_code == 401


def test_other_users_data_is_untouched(alice, bob, alice_client, bob_client, accounts, _media_root):
    bob_files = files_of(_media_root, bob)

    alice_client.post(DELETE_URL, {"email": alice.email})

    assert files_of(_media_root, bob) == bob_files
    assert len(bob_files) == 2
    assert BatchProcess.objects.filter(user=bob).count() == 1
    assert Document.objects.filter(user=bob).count() == 2
    assert bob_client.get(f"/dashboard/batches/{accounts['bob_batch'].pk}/").status_code == 200
    document = Document.objects.filter(user=bob).first()
    download = bob_client.get(f"/dashboard/documents/{document.pk}/original/")
    assert b"".join(download.streaming_content).startswith(b"Invoice number: b-")
    me = bob_client.get("/api/v1/me/", HTTP_AUTHORIZATION=f"Bearer {accounts['bob_key']}")
    assert me.json()["email"] == bob.email


def test_a_wrong_confirmation_deletes_nothing(alice, alice_client, accounts, _media_root):
    response = alice_client.post(DELETE_URL, {"email": "bob@example.com"})

    assert response.status_code == 400
    assert "Type your email address exactly" in response.content.decode()
    assert User.objects.filter(pk=alice.pk).exists()
    assert Document.objects.filter(user=alice).count() == 2
    assert len(files_of(_media_root, alice)) == 2


def test_the_settings_page_offers_deletion_with_a_confirmation_field(alice_client):
    page = alice_client.get("/settings/").content.decode()

    assert 'action="/settings/delete/"' in page
    assert 'name="email"' in page
    assert "Delete my account" in page


def test_deletion_is_post_only_and_needs_a_login(alice, alice_client, client):
    assert alice_client.get(DELETE_URL).status_code == 405

    anonymous = client.post(DELETE_URL, {"email": alice.email})

    assert anonymous.status_code == 302
    assert anonymous.url.startswith("/accounts/login/")
    assert User.objects.filter(pk=alice.pk).exists()


def test_deletion_without_a_csrf_token_is_refused(alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)

    response = browser.post(DELETE_URL, {"email": alice.email})

    assert response.status_code == 403
    assert User.objects.filter(pk=alice.pk).exists()


# --- A paying user ----------------------------------------------------------------------------


@pytest.fixture
def fake(fake_stripe: FakeStripe) -> Iterator[FakeStripe]:  # noqa: F811
    yield fake_stripe
    assert fake_stripe.errors == []


@pytest.fixture
def subscribed_frank(frank, fake) -> tuple[User, str]:
    """Frank pays for Plus through Stripe (no staff override)."""
    customer = customer_ensure(user=frank)
    subscription = fake.subscription(
        customer=customer, price="price_plus", metadata={"user_id": str(frank.pk)}
    )
    subscription_sync(subscription_id=subscription["id"])
    assert Subscription.objects.get(user=frank).status == Subscription.Status.ACTIVE
    return frank, subscription["id"]


def test_deleting_a_paying_account_cancels_its_stripe_subscription_first(
    subscribed_frank, frank_client, fake
):
    frank, subscription_id = subscribed_frank

    response = frank_client.post(DELETE_URL, {"email": frank.email})

    assert response.status_code == 302
    assert fake.subscriptions[subscription_id]["status"] == "canceled"
    assert fake.count(f"/v1/subscriptions/{subscription_id}", "DELETE") == 1
    assert not User.objects.filter(pk=frank.pk).exists()
    assert not Subscription.objects.filter(stripe_subscription_id=subscription_id).exists()


def test_a_subscription_stripe_made_moments_before_the_deletion_is_canceled_too(
    frank, frank_client, fake
):
    """Checkout finished seconds ago: Stripe has the subscription, its webhook has not reached
    Sheaf yet, so Sheaf has no subscription row to cancel. Deleting the customer cancels it."""
    customer = customer_ensure(user=frank)
    subscription = fake.subscription(
        customer=customer, price="price_plus", metadata={"user_id": str(frank.pk)}
    )
    assert not Subscription.objects.filter(user=frank).exists()

    response = frank_client.post(DELETE_URL, {"email": frank.email})

    assert response.status_code == 302
    assert fake.subscriptions[subscription["id"]]["status"] == "canceled"
    assert customer not in fake.customers
    assert not User.objects.filter(pk=frank.pk).exists()


def test_stripes_cancellation_webhook_for_a_deleted_account_is_harmless(
    subscribed_frank, frank_client, fake, client, django_capture_on_commit_callbacks
):
    frank, _ = subscribed_frank
    frank_client.post(DELETE_URL, {"email": frank.email})
    (event,) = [e for e in fake.events if e["type"] == "customer.subscription.deleted"]

    body, header = signed_payload(event, fake.webhook_secret)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/billing/webhook/", body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )

    assert response.status_code == 200
    assert run_queued_stripe_events() == ["processed"]
    assert not User.objects.filter(pk=frank.pk).exists()
    assert not Subscription.objects.exists()


def test_when_stripe_refuses_the_cancellation_nothing_is_deleted(
    subscribed_frank, frank_client, fake, settings
):
    frank, subscription_id = subscribed_frank
    settings.STRIPE_SECRET_KEY = "sk_live_not_accepted_by_the_fake"

    response = frank_client.post(DELETE_URL, {"email": frank.email})

    assert response.status_code == 409
    assert "could not cancel your subscription" in response.content.decode()
    assert "so nothing was deleted" in response.content.decode()
    assert User.objects.filter(pk=frank.pk).exists()
    assert Subscription.objects.get(user=frank).status == Subscription.Status.ACTIVE
    assert fake.subscriptions[subscription_id]["status"] == "active"


def test_a_subscription_already_canceled_in_stripe_does_not_block_deletion(
    subscribed_frank, frank_client, fake
):
    frank, subscription_id = subscribed_frank
    fake.subscription(subscription_id, status="canceled")  # not synced: Sheaf still says active

    response = frank_client.post(DELETE_URL, {"email": frank.email})

    assert response.status_code == 302
    assert not User.objects.filter(pk=frank.pk).exists()


# --- Workers holding a document of the deleted account ---------------------------------------


def test_a_worker_finishing_a_deleted_document_does_nothing(alice, alice_client, bob, accounts):
    claims = [pipeline.document_claim() for _ in range(4)]
    alice_claims = [c for c in claims if c and c.batch_id == accounts["alice_batch"].pk]
    assert len(alice_claims) == 2
    bob_before = list(Document.objects.filter(user=bob).values_list("pk", "status"))

    alice_client.post(DELETE_URL, {"email": alice.email})

    first, second = alice_claims
    assert pipeline.document_process(claim=first) == "lost"
    assert pipeline.document_complete(claim=first, result={"fields": {}}) == "lost"
    transient = ExtractionError("provider_error", "overloaded", kind=ErrorKind.TRANSIENT)
    assert pipeline.document_fail(claim=second, error=transient) == "lost"
    critical = ExtractionError("provider_error", "bad key", kind=ErrorKind.CRITICAL)
    assert pipeline.document_fail(claim=second, error=critical) == "lost"
    assert list(Document.objects.filter(user=bob).values_list("pk", "status")) == bob_before
