from __future__ import annotations

import hashlib
import re

import pytest
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import MonthlyUsage, Subscription
from accounts.selectors import month_start, user_usage
from accounts.services import quota_release
from batches.models import BatchProcess
from batches.services import batch_create
from batchsite.errors import Rejected
from documents.models import Document
from extraction.fields import fields_from_prompt, parse_fields
from samples.invoices import invoices
from tests.factories import UserFactory
from tests.support.documents import HTML_PAGE, invoice_upload

PROMPT = "invoice number, date and total"
PDFS = invoices(3)


def uploads(count: int = len(PDFS)) -> list[SimpleUploadedFile]:
    """The first `count` of PDFS, as a form or the API receives them."""
    return [SimpleUploadedFile(made.filename, made.pdf) for made in PDFS[:count]]


def documents_reserved(user) -> int:
    return user_usage(user).documents_this_month


@pytest.fixture
def offline(settings):
    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = ""


# --- Storing a batch whole ------------------------------------------------------------------------


def test_a_batch_is_stored_whole_with_one_queued_document_per_file(alice, media_files, offline):
    batch = batch_create(user=alice, files=uploads(), prompt=PROMPT)

    documents = list(batch.documents.order_by("created_at", "id"))
    assert batch.user == alice
    assert batch.status == "queued"
    assert batch.total_documents == 3
    assert [d.original_filename for d in documents] == [made.filename for made in PDFS]
    for document, made in zip(documents, PDFS, strict=True):
        source = made.pdf
        assert document.status == "queued"
        assert document.user == alice
        assert document.content_type == "application/pdf"
        assert document.size == len(source)
        assert document.sha256 == hashlib.sha256(source).hexdigest()
        assert document.file.name == f"uploads/{alice.pk}/{batch.pk}/{document.pk}.pdf"
        with document.file.open("rb") as stored:
            assert stored.read() == source
    assert len(media_files()) == 3


def test_a_failure_while_storing_the_third_file_leaves_no_rows_and_no_files(
    alice, media_files, monkeypatch
):
    real_save = FileSystemStorage._save
    saved: list[str] = []

    def save_twice_then_fail(self, name, content):
        if len(saved) == 2:
            raise OSError(28, "No space left on device")
        saved.append(real_save(self, name, content))
        return saved[-1]

    monkeypatch.setattr(FileSystemStorage, "_save", save_twice_then_fail)

    with pytest.raises(OSError, match="No space left on device"):
        batch_create(user=alice, files=uploads(), prompt=PROMPT)

    assert len(saved) == 2  # two files really reached the disk before the failure
    assert BatchProcess.objects.count() == 0
    assert Document.objects.count() == 0
    assert media_files() == []
    assert documents_reserved(alice) == 0


def test_a_rejected_submission_reports_every_bad_file_and_stores_nothing(alice, media_files):
    files = [
        invoice_upload(),
        SimpleUploadedFile("invoice.pdf", HTML_PAGE),
        invoice_upload("x.pdf.html"),
    ]

    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=files, prompt=PROMPT)

    assert [(p.code, p.message) for p in caught.value.problems] == [
        ("unsupported_type", "invoice.pdf has a .pdf name but its content is not PDF."),
        (
            "unsupported_type",
            "x.pdf.html: .html files are not supported; upload PDF, CSV, XLSX, TXT, PNG, JPEG, "
            "TIFF or an XML e-invoice (UBL, CII).",
        ),
    ]
    assert BatchProcess.objects.count() == 0
    assert Document.objects.count() == 0
    assert media_files() == []
    assert documents_reserved(alice) == 0


def test_a_client_path_in_the_filename_is_dropped_and_never_used_for_storage(
    alice, media_files, tmp_path
):
    source = tmp_path / "invoice.pdf"
    source.write_bytes(PDFS[0].pdf)
    with source.open("rb") as handle:
        batch = batch_create(
            user=alice, files=[File(handle, name="../../etc/passwd.pdf")], prompt=PROMPT
        )

    document = batch.documents.get()
    assert document.original_filename == "passwd.pdf"
    assert re.fullmatch(rf"uploads/{alice.pk}/{batch.pk}/[0-9a-f-]{{36}}\.pdf", document.file.name)
    assert [p.name for p in media_files()] == [f"{document.pk}.pdf"]
    assert media_files()[0].read_bytes() == source.read_bytes()


def test_a_prompt_is_required(alice, media_files):
    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=uploads(1), prompt="   ")

    assert caught.value.code == "invalid_prompt"
    assert "Say what to extract" in caught.value.problems[0].message
    assert BatchProcess.objects.count() == 0
    assert media_files() == []


# --- Names ----------------------------------------------------------------------------------------


def test_a_single_file_batch_is_named_after_the_file(alice):
    batch = batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    assert batch.name == PDFS[0].filename.removesuffix(".pdf")


def test_a_batch_of_several_files_is_named_after_the_first_and_the_count(alice):
    batch = batch_create(user=alice, files=uploads(), prompt=PROMPT)

    assert batch.name == f"{PDFS[0].filename.removesuffix('.pdf')} and 2 more"


def test_a_given_name_and_description_are_kept_with_whitespace_tidied(alice):
    batch = batch_create(
        user=alice,
        files=uploads(1),
        prompt=f"  {PROMPT}  ",
        name="  Q3   supplier\ninvoices ",
        description="  From the shared inbox.\n",
    )

    assert batch.name == "Q3 supplier invoices"
    assert batch.description == "From the shared inbox."
    assert batch.extraction_prompt == PROMPT


def test_a_name_longer_than_200_characters_is_refused(alice, media_files):
    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=uploads(1), prompt=PROMPT, name="n" * 201)

    assert caught.value.problems[0].message == "The name is longer than 200 characters."
    assert BatchProcess.objects.count() == 0


# --- Fields ---------------------------------------------------------------------------------------


def test_fields_are_inferred_from_the_prompt_when_none_are_given(alice):
    batch = batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    assert [f["name"] for f in fields_from_prompt(PROMPT)] == ["invoice number", "date", "total"]
    assert batch.fields == fields_from_prompt(PROMPT)


def test_given_fields_are_stored_as_parsed(alice):
    fields = parse_fields("invoice number\nissue date:date\ntotal:number -- with currency")

    batch = batch_create(user=alice, files=uploads(1), prompt=PROMPT, fields=fields)

    batch.refresh_from_db()
    assert batch.fields == [
        {"name": "invoice number", "type": "string", "description": ""},
        {"name": "issue date", "type": "date", "description": ""},
        {"name": "total", "type": "number", "description": "with currency"},
    ]


# --- Quota ----------------------------------------------------------------------------------------


def test_each_document_is_reserved_against_the_months_quota(alice):
    batch_create(user=alice, files=uploads(), prompt=PROMPT)
    batch_create(user=alice, files=uploads(2), prompt=PROMPT)

    usage = MonthlyUsage.objects.get(user=alice)
    assert usage.month == month_start()
    assert usage.documents == 5


def test_quota_release_gives_documents_back_to_the_month(alice, bob):
    batch_create(user=alice, files=uploads(), prompt=PROMPT)
    batch_create(user=bob, files=uploads(1), prompt=PROMPT)

    quota_release(user_id=alice.pk, month=month_start(), documents=2)

    assert documents_reserved(alice) == 1
    assert documents_reserved(bob) == 1


def test_releasing_more_than_is_reserved_changes_nothing(alice):
    batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    quota_release(user_id=alice.pk, month=month_start(), documents=5)

    assert documents_reserved(alice) == 1


def test_a_batch_that_does_not_fit_the_months_quota_is_refused_whole(alice, settings, media_files):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 4}}
    batch_create(user=alice, files=uploads(2), prompt=PROMPT)

    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=uploads(), prompt=PROMPT)

    assert caught.value.code == "quota_exceeded"
    assert caught.value.problems[0].message == (
        "Your Plus plan includes 4 documents a month; 2 are used and 2 left, so these 3 do not "
        "fit. Upgrade, or wait for next month."
    )
    assert BatchProcess.objects.count() == 1
    assert Document.objects.count() == 2
    assert len(media_files()) == 2
    assert documents_reserved(alice) == 2


def test_a_rate_limited_submission_gives_its_reservation_back(alice, settings, media_files):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"submissions_per_hour": 1}}
    batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=uploads(2), prompt=PROMPT)

    assert caught.value.code == "rate_limited"
    assert caught.value.http_status == 429
    assert 1 <= caught.value.retry_after <= 3601
    assert documents_reserved(alice) == 1
    assert BatchProcess.objects.count() == 1
    assert len(media_files()) == 1


# --- Plan, priority and engine --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "plan", "priority"),
    [("frank", "free", 0), ("alice", "plus", 5), ("grace", "growth", 10)],
)
def test_the_batch_records_the_plan_and_priority_of_its_user(request, persona, plan, priority):
    user = request.getfixturevalue(persona)

    batch = batch_create(user=user, files=uploads(1), prompt=PROMPT)

    batch.refresh_from_db()
    assert (batch.plan, batch.priority) == (plan, priority)


def test_a_subscribers_batch_records_the_subscription_plan(db):
    user = UserFactory()
    Subscription.objects.create(user=user, plan="growth", status="active")

    batch = batch_create(user=user, files=uploads(1), prompt=PROMPT)

    assert (batch.plan, batch.priority) == ("growth", 10)


def test_growth_may_use_the_economy_lane(grace):
    batch = batch_create(user=grace, files=uploads(1), prompt=PROMPT, mode="economy")

    assert batch.mode == "economy"


def test_plus_may_not_use_the_economy_lane(alice, media_files):
    with pytest.raises(Rejected) as caught:
        batch_create(user=alice, files=uploads(1), prompt=PROMPT, mode="economy")

    assert caught.value.code == "plan_limit"
    assert caught.value.problems[0].message == (
        "The economy lane is part of the Growth plan; your plan is Plus."
    )
    assert BatchProcess.objects.count() == 0
    assert media_files() == []


def test_without_an_anthropic_key_batches_use_the_local_engine(alice, offline):
    batch = batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    batch.refresh_from_db()
    assert batch.engine == "local"


def test_the_engine_setting_wins_over_the_key(alice, settings):
    settings.SHEAF_EXTRACTION_ENGINE = "local"
    settings.ANTHROPIC_API_KEY = "sk-ant-test"

    batch = batch_create(user=alice, files=uploads(1), prompt=PROMPT)

    assert batch.engine == "local"
