"""The Uploads table of DESIGN.md, driven through the dashboard form with generated files."""

from __future__ import annotations

import hashlib
import html
import io
import re
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import MonthlyUsage
from accounts.plans import MB
from accounts.selectors import user_usage
from batches.models import BatchProcess
from documents.models import Document
from samples.invoices import invoices
from tests.support.documents import (
    HTML_PAGE,
    INVOICE_PDF,
    csv_bytes,
    invoice_upload,
    invoice_uploads,
    xlsx_bytes,
)

UPLOAD_URL = "/dashboard/batch-upload/"
PROMPT = "invoice number, date and total"


def post_upload(client, files, **data):
    form = {"name": "", "description": "", "prompt": PROMPT, "fields": "", "mode": "standard"}
    form.update(data)
    return client.post(UPLOAD_URL, {**form, "files": files})


def page_text(response) -> str:
    """The page as a person reads it: no tags, entities decoded, whitespace collapsed."""
    text = re.sub(r"<[^>]+>", " ", response.content.decode())
    return " ".join(html.unescape(text).split())


def assert_refused(response, *messages: str) -> str:
    assert response.status_code == 400
    text = page_text(response)
    for message in messages:
        assert message in text
    return text


def assert_nothing_stored(media_files) -> None:
    assert BatchProcess.objects.count() == 0
    assert Document.objects.count() == 0
    assert media_files() == []


def pdf_of_size(size: int) -> bytes:
    """A file with a real PDF header, padded (inside a comment) to exactly `size` bytes."""
    head = b"%PDF-1.4\n%"
    return head + b"0" * (size - len(head))


def created_batch(response) -> BatchProcess:
    assert response.status_code == 302, page_text(response)
    match = re.fullmatch(r"/dashboard/batches/([0-9a-f-]{36})/", response["Location"])
    assert match, response["Location"]
    return BatchProcess.objects.get(pk=match.group(1))


def document_rows(body: str) -> dict[str, str]:
    """Each document row of the batch page, by filename (its link's text), as text."""
    rows = {}
    for row in re.findall(r"<tr data-document[^>]*>(.*?)</tr>", body, re.DOTALL):
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        name = html.unescape(re.search(r"<a [^>]*>(.*?)</a>", cells[0], re.DOTALL).group(1))
        texts = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split()) for c in cells]
        rows[name] = " ".join(texts[1:])
    return rows


# --- One test per row of the Uploads table --------------------------------------------------------


def test_a_pdf_named_file_whose_bytes_are_html_is_refused_and_nothing_is_stored(
    frank_client, media_files
):
    response = post_upload(frank_client, [SimpleUploadedFile("invoice.pdf", HTML_PAGE)])

    assert_refused(response, "invoice.pdf has a .pdf name but its content is not PDF.")
    assert_nothing_stored(media_files)


def test_a_file_with_a_pdf_inside_its_name_but_an_html_extension_is_refused(
    frank_client, media_files
):
    response = post_upload(frank_client, [invoice_upload("x.pdf.html")])

    assert_refused(
        response,
        "x.pdf.html: .html files are not supported; upload PDF, CSV, XLSX, TXT, PNG, JPEG, "
        "TIFF or an XML e-invoice (UBL, CII).",
    )
    assert_nothing_stored(media_files)


def test_an_empty_file_is_refused_as_empty_and_nothing_is_stored(frank_client, media_files):
    response = post_upload(frank_client, [SimpleUploadedFile("scan.pdf", b"")])

    assert_refused(response, "scan.pdf is empty.")
    assert_nothing_stored(media_files)


def test_a_free_user_is_told_a_file_over_10_mb_is_too_large_and_nothing_is_stored(
    frank_client, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {}
    big = SimpleUploadedFile("big.pdf", pdf_of_size(10 * MB + 1))

    response = post_upload(frank_client, [big])

    assert_refused(response, "big.pdf is 10.0 MB; your plan allows files up to 10.0 MB.")
    assert_nothing_stored(media_files)


def test_a_file_one_byte_over_the_plans_size_is_refused_and_one_at_the_size_is_accepted(
    alice_client, alice, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"max_file_size": 100_000}}

    over = post_upload(alice_client, [SimpleUploadedFile("over.pdf", pdf_of_size(100_001))])

    assert_refused(over, "over.pdf is 97.7 KB; your plan allows files up to 97.7 KB.")
    assert_nothing_stored(media_files)

    at_limit = post_upload(alice_client, [SimpleUploadedFile("fits.pdf", pdf_of_size(100_000))])

    batch = created_batch(at_limit)
    assert batch.documents.get().size == 100_000
    assert len(media_files()) == 1


def test_a_free_user_sending_two_files_is_told_the_limit_and_nothing_is_stored(
    frank_client, media_files
):
    files = [
        invoice_upload("first.pdf"),
        invoice_upload("second.pdf"),
    ]

    response = post_upload(frank_client, files)

    assert_refused(
        response,
        "Your Free plan allows 1 file per batch; this submission has 2",
        "second.pdf",
    )
    assert_nothing_stored(media_files)


def test_a_plus_user_sending_one_file_more_than_the_plan_allows_stores_nothing(
    alice_client, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": 3}}
    files = invoice_uploads(4)

    response = post_upload(alice_client, files)

    assert_refused(
        response,
        "Your Plus plan allows 3 files per batch; this submission has 4",
        files[3].name,
    )
    assert_nothing_stored(media_files)


def test_a_submission_over_the_hours_limit_is_rate_limited_and_stores_nothing(
    frank_client, frank, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"free": {"submissions_per_hour": 1}}
    first = post_upload(frank_client, [invoice_upload()])
    batch = created_batch(first)

    second = post_upload(frank_client, invoice_uploads(1, seed=2))

    assert_refused(
        second,
        "Nothing was uploaded.",
        "Your Free plan allows 1 batch submission an hour; try again later.",
    )
    assert list(BatchProcess.objects.all()) == [batch]
    assert Document.objects.count() == 1
    assert len(media_files()) == 1
    assert user_usage(frank).documents_this_month == 1


def test_deleting_a_batch_does_not_give_back_a_submission_of_the_hour(
    frank_client, frank, media_files, settings, django_capture_on_commit_callbacks
):
    settings.SHEAF_PLAN_LIMITS = {"free": {"submissions_per_hour": 1}}
    batch = created_batch(post_upload(frank_client, [invoice_upload()]))
    with django_capture_on_commit_callbacks(execute=True):
        deleted = frank_client.post(f"/dashboard/batches/{batch.pk}/delete/")
    assert deleted.status_code == 302
    assert BatchProcess.objects.count() == 0

    again = post_upload(frank_client, invoice_uploads(1, seed=2))

    assert_refused(again, "Your Free plan allows 1 batch submission an hour; try again later.")
    assert_nothing_stored(media_files)


def test_a_submission_over_the_months_documents_is_refused_and_usage_is_unchanged(
    alice_client, alice, media_files, settings
):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"documents_per_month": 3}}
    first = post_upload(alice_client, invoice_uploads(2))
    created_batch(first)

    second = post_upload(alice_client, invoice_uploads(2, seed=2))

    assert_refused(
        second,
        "Nothing was uploaded.",
        "Your Plus plan includes 3 documents a month; 2 are used and 1 left, so these 2 do not "
        "fit.",
        "2 of 3 documents used this month",
    )
    assert MonthlyUsage.objects.get(user=alice).documents == 2
    assert BatchProcess.objects.count() == 1
    assert Document.objects.count() == 2
    assert len(media_files()) == 2


def test_a_path_in_the_filename_is_dropped_shown_as_passwd_pdf_and_stored_under_a_uuid(
    alice_client, alice, media_files, tmp_path
):
    source = INVOICE_PDF
    boundary = "sheaf-test-boundary-7d93"
    body = b""
    for name, value in {"prompt": PROMPT, "mode": "standard"}.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    # Django's test client strips paths from file names itself, so the request is built by hand.
    body += (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="files"; filename="../../etc/passwd.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    body += source + f"\r\n--{boundary}--\r\n".encode()

    response = alice_client.post(
        UPLOAD_URL, data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )

    batch = created_batch(response)
    document = batch.documents.get()
    assert document.original_filename == "passwd.pdf"
    assert document.file.name == f"uploads/{alice.pk}/{batch.pk}/{document.pk}.pdf"
    stored = media_files()
    assert [p.relative_to(tmp_path / "media").as_posix() for p in stored] == [document.file.name]
    assert stored[0].read_bytes() == source
    page = alice_client.get(response["Location"])
    assert "passwd.pdf" in document_rows(page.content.decode())
    assert "etc/passwd" not in page.content.decode()


def test_a_300_character_name_is_accepted_and_shown_truncated_to_255_with_its_extension(
    alice_client, media_files
):
    long_name = "Quarterly-statement-" + "x" * 276 + ".pdf"
    assert len(long_name) == 300

    response = post_upload(alice_client, [invoice_upload(long_name)])

    batch = created_batch(response)
    document = batch.documents.get()
    shown = long_name[:251] + ".pdf"
    assert document.original_filename == shown
    assert len(shown) == 255
    rows = document_rows(alice_client.get(response["Location"]).content.decode())
    assert list(rows) == [shown]
    assert media_files()[0].name == f"{document.pk}.pdf"


def test_a_non_ascii_name_is_accepted_and_shown_as_is(alice_client, media_files):
    name = "Übersicht-Rechnung-№42-日本.pdf"

    response = post_upload(alice_client, [invoice_upload(name)])

    batch = created_batch(response)
    assert batch.documents.get().original_filename == name
    rows = document_rows(alice_client.get(response["Location"]).content.decode())
    assert list(rows) == [name]
    assert "Queued" in rows[name]


# --- Content checks beyond PDF --------------------------------------------------------------------


def test_a_csv_an_xlsx_and_a_txt_file_are_accepted_by_content(alice_client, alice, media_files):
    files = {
        "ledger.csv": b"invoice number,date,total\nINV-42,2024-03-01,119.00\n",
        "ledger-1252.csv": csv_bytes(
            [["Lieferant", "Betrag"], ["Café Müller", "12,50 €"]], encoding="cp1252", delimiter=";"
        ),
        "ledger-16.csv": csv_bytes(
            [["Supplier", "Total"], ["Weiß", "7.00"]], encoding="utf-16", delimiter="\t"
        ),
        "ledger.xlsx": xlsx_bytes(
            {"Invoices": [["invoice number", "date", "total"], ["INV-42", "2024-03-01", 119.0]]}
        ),
        "notes.txt": "Rechnung Nr. 42 — Summe 119,00 €\n".encode(),
    }

    response = post_upload(
        alice_client, [SimpleUploadedFile(name, data) for name, data in files.items()]
    )

    batch = created_batch(response)
    documents = {d.original_filename: d for d in batch.documents.all()}
    assert set(documents) == set(files)
    assert {name: d.content_type for name, d in documents.items()} == {
        "ledger.csv": "text/csv",
        "ledger-1252.csv": "text/csv",
        "ledger-16.csv": "text/csv",
        "ledger.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "notes.txt": "text/plain",
    }
    for name, document in documents.items():
        assert document.file.name.endswith("." + name.rsplit(".", 1)[1])
        with document.file.open("rb") as stored:
            assert stored.read() == files[name]
    assert len(media_files()) == 5


def test_a_csv_whose_bytes_are_a_pdf_is_refused(alice_client, media_files):
    response = post_upload(alice_client, [invoice_upload("export.csv")])

    assert_refused(response, "export.csv has a .csv name but its content is not CSV.")
    assert_nothing_stored(media_files)


def test_an_xlsx_that_is_a_plain_zip_without_a_workbook_is_refused(alice_client, media_files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")

    response = post_upload(alice_client, [SimpleUploadedFile("book.xlsx", buffer.getvalue())])

    assert_refused(response, "book.xlsx has a .xlsx name but its content is not XLSX.")
    assert_nothing_stored(media_files)


def test_one_bad_file_among_three_stores_nothing_and_is_named(alice_client, media_files):
    first, third = invoice_uploads(2)
    files = [first, SimpleUploadedFile("scan-2.pdf", HTML_PAGE), third]

    response = post_upload(alice_client, files)

    text = assert_refused(response, "scan-2.pdf has a .pdf name but its content is not PDF.")
    assert f"{first.name} has" not in text
    assert_nothing_stored(media_files)


# --- The rest of the form -------------------------------------------------------------------------


def test_invalid_fields_text_is_refused_with_the_field_named_and_nothing_stored(
    alice_client, media_files
):
    response = post_upload(alice_client, [invoice_upload()], fields="invoice number\ntotal:money")

    assert_refused(
        response,
        "Field 'total': unknown type 'money'; use one of string, number, date, boolean, list, "
        "table.",
    )
    assert_nothing_stored(media_files)


def test_a_bad_table_field_is_refused_with_every_problem_and_nothing_stored(
    alice_client, media_files
):
    fields = (
        "invoice number\nline items: table(description; description; amount:money)\ntotal:money"
    )

    response = post_upload(alice_client, [invoice_upload()], fields=fields)

    text = assert_refused(response, "3 problems in the fields:")
    for problem in [
        "Field 'line items', column 'description' is listed twice.",
        "Field 'line items', column 'amount': unknown type 'money'; "
        "use one of string, number, date, boolean.",
        "Field 'total': unknown type 'money'",
    ]:
        assert problem in text
    assert_nothing_stored(media_files)


def test_a_plus_user_asking_for_the_economy_lane_is_told_it_is_part_of_growth(
    alice_client, media_files
):
    response = post_upload(alice_client, [invoice_upload()], mode="economy")

    assert_refused(response, "The economy lane is part of the Growth plan; your plan is Plus.")
    assert_nothing_stored(media_files)


def test_a_growth_user_may_submit_to_the_economy_lane(grace_client):
    response = post_upload(grace_client, [invoice_upload()], mode="economy")

    assert created_batch(response).mode == "economy"


def test_a_submission_without_files_is_refused(alice_client, media_files):
    response = post_upload(alice_client, [])

    assert_refused(response, "Choose at least one file to upload.")
    assert_nothing_stored(media_files)


def test_a_submission_without_a_prompt_is_refused(alice_client, media_files):
    response = post_upload(alice_client, [invoice_upload()], prompt="")

    assert_refused(response, "This field is required.")
    assert_nothing_stored(media_files)


def test_fields_written_in_the_form_are_stored_on_the_batch(alice_client):
    response = post_upload(
        alice_client,
        [invoice_upload()],
        name="March invoices",
        fields="invoice number\nissue date:date\ntotal:number -- with currency",
    )

    batch = created_batch(response)
    assert batch.name == "March invoices"
    assert batch.fields == [
        {"name": "invoice number", "type": "string", "description": ""},
        {"name": "issue date", "type": "date", "description": ""},
        {"name": "total", "type": "number", "description": "with currency"},
    ]


def test_a_plus_user_submitting_ten_pdfs_gets_a_queued_batch_of_ten_stored_documents(
    alice_client, alice, media_files
):
    made = invoices(10)
    response = post_upload(alice_client, invoice_uploads(10))

    batch = created_batch(response)
    assert batch.user == alice
    assert batch.total_documents == 10
    documents = list(batch.documents.order_by("created_at", "id"))
    assert len(documents) == 10
    sources = {invoice.filename: invoice.pdf for invoice in made}
    assert {d.original_filename for d in documents} == set(sources)
    for document in documents:
        source = sources[document.original_filename]
        assert document.status == "queued"
        assert document.size == len(source)
        assert document.sha256 == hashlib.sha256(source).hexdigest()
        assert document.file.name == f"uploads/{alice.pk}/{batch.pk}/{document.pk}.pdf"
        assert document.file.storage.exists(document.file.name)
        with document.file.open("rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == document.sha256
    assert len(media_files()) == 10
    assert user_usage(alice).documents_this_month == 10

    page = alice_client.get(response["Location"])
    assert page.status_code == 200
    rows = document_rows(page.content.decode())
    assert set(rows) == set(sources)
    for status in rows.values():
        assert status.startswith("Queued")
    assert f"{made[0].filename.removesuffix('.pdf')} and 9 more" in page_text(page)


@pytest.mark.parametrize("client_fixture", ["frank_client", "alice_client"])
def test_a_refused_form_keeps_what_the_user_typed(request, client_fixture, media_files):
    client = request.getfixturevalue(client_fixture)

    response = post_upload(
        client,
        [SimpleUploadedFile("scan.pdf", b"")],
        name="Supplier run",
        prompt="supplier VAT id and total",
    )

    assert_refused(response, "scan.pdf is empty.")
    body = response.content.decode()
    assert 'value="Supplier run"' in body
    assert "supplier VAT id and total</textarea>" in body
