"""In a real Chromium, the upload keeping files: each chosen file is sent on its own, a refused
one is shown with its reason and removed, a submission the server refuses comes back with the
files still chosen, and the batch is made of them; under the page's Content-Security-Policy."""

from __future__ import annotations

import re

import pytest

from batches.models import BatchProcess, DraftFile, UploadDraft
from tests.browser.test_accessibility import shown_violations
from tests.support.documents import HTML_PAGE, INVOICE_PDF

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def fields_as_text(page):
    """The fields' textarea, which the field editor keeps under "As text"."""
    textarea = page.locator("[name=fields]")
    if not textarea.is_visible():
        page.locator("summary", has_text="As text").click()
    return textarea


def test_the_upload_keeps_the_files_through_a_refused_file_and_a_refused_submission(
    page, live_server, sign_in, alice, shots
):
    from playwright.sync_api import expect

    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")

    page.set_input_files(
        "input[name=files]",
        [
            {"name": "march.pdf", "mimeType": "application/pdf", "buffer": INVOICE_PDF},
            {"name": "fake.pdf", "mimeType": "application/pdf", "buffer": HTML_PAGE},
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"Total: 12.00 EUR\n"},
        ],
    )
    rows = page.locator("[data-files] li")
    fake = rows.filter(has_text="fake.pdf")
    expect(fake.locator(".file-status")).to_have_text(
        "refused: fake.pdf has a .pdf name but its content is not PDF."
    )
    expect(rows.filter(has_text="march.pdf").locator(".file-status")).to_have_text("ready")
    expect(rows.filter(has_text="notes.txt").locator(".file-status")).to_have_text("ready")
    start = page.get_by_role("button", name="Start batch")
    expect(start).to_be_disabled()
    expect(page.locator("[data-file-blocked]")).to_have_text(
        "Remove the 1 refused file to start the batch."
    )
    shots("refused-file")
    assert shown_violations(page) == []
    assert list(DraftFile.objects.values_list("original_filename", flat=True)) == [
        "march.pdf",
        "notes.txt",
    ]

    page.get_by_role("button", name="Remove fake.pdf").click()
    expect(rows).to_have_count(2)
    expect(page.locator("[data-file-count]")).to_have_text("2 of 25 files")
    expect(start).to_be_enabled()

    # The server refuses the submission (a field of an unknown type): the files stay chosen.
    page.fill("[name=prompt]", "total")
    fields_as_text(page).fill("total:money")
    start.click()
    expect(page.get_by_text("Field 'total': unknown type 'money'").first).to_be_visible()
    expect(page.get_by_text("The files you chose are kept below.")).to_be_visible()
    expect(page.locator("[data-files] .file-name")).to_have_text(["march.pdf", "notes.txt"])
    expect(page.locator("[data-files] .file-status")).to_have_text(["ready", "ready"])
    shots("refused-submission")
    assert shown_violations(page) == []
    assert BatchProcess.objects.count() == 0

    fields_as_text(page).fill("total:number")
    page.get_by_role("button", name="Start batch").click()
    expect(page).to_have_url(re.compile(r"/dashboard/batches/[0-9a-f-]{36}/$"))
    expect(page.get_by_role("link", name="march.pdf", exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="notes.txt", exact=True).first).to_be_visible()
    shots("batch")
    batch = BatchProcess.objects.get()
    assert sorted(batch.documents.values_list("original_filename", flat=True)) == [
        "march.pdf",
        "notes.txt",
    ]
    assert not UploadDraft.objects.exists()
    assert page.evaluate("window.cspViolations") == []


def test_the_page_holds_back_a_file_too_large_and_one_too_many_before_sending_them(
    page, live_server, sign_in, alice, settings
):
    from playwright.sync_api import expect

    settings.SHEAF_PLAN_LIMITS = {"plus": {"files_per_batch": 2, "max_file_size": 1024}}
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")

    page.set_input_files(
        "input[name=files]",
        [
            {"name": f"note-{n}.txt", "mimeType": "text/plain", "buffer": b"Total: 12.00 EUR\n"}
            for n in (1, 2, 3)
        ]
        + [{"name": "big.txt", "mimeType": "text/plain", "buffer": b"x" * 2048}],
    )
    status = page.locator("[data-files] .file-status")
    expect(status).to_have_text(
        [
            "ready",
            "ready",
            "one too many for your plan",
            "refused: It is 2.0 KB; your plan allows files up to 1.0 KB.",
        ]
    )
    start = page.get_by_role("button", name="Start batch")
    expect(start).to_be_disabled()
    assert list(DraftFile.objects.values_list("original_filename", flat=True)) == [
        "note-1.txt",
        "note-2.txt",
    ]
    assert shown_violations(page) == []

    page.get_by_role("button", name="Remove big.txt").click()
    expect(page.locator("[data-file-blocked]")).to_have_text(
        "Your plan takes 2 files per batch: remove 1 file to start it."
    )
    expect(start).to_be_disabled()
    page.get_by_role("button", name="Remove note-1.txt").click()
    # The file that waited is sent now that it fits.
    expect(status).to_have_text(["ready", "ready"])
    expect(start).to_be_enabled()
    assert sorted(DraftFile.objects.values_list("original_filename", flat=True)) == [
        "note-2.txt",
        "note-3.txt",
    ]


def test_the_one_file_form_checks_the_file_before_sending_it(page, live_server, sign_in, frank):
    from playwright.sync_api import expect

    sign_in(frank)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    picker = page.locator("input[name=files]")
    problem = page.get_by_role("alert").filter(has_text="notes.docx")

    picker.set_input_files(
        files=[{"name": "notes.docx", "mimeType": "application/octet-stream", "buffer": b"PK"}]
    )
    expect(problem).to_have_text("notes.docx: .docx files are not supported.")
    page.fill("[name=prompt]", "total")
    page.get_by_role("button", name="Process document").click()
    # The browser holds the submission back: nothing was sent.
    expect(page).to_have_url(f"{live_server.url}/dashboard/batch-upload/")
    assert BatchProcess.objects.count() == 0

    picker.set_input_files(
        files=[{"name": "march.pdf", "mimeType": "application/pdf", "buffer": INVOICE_PDF}]
    )
    expect(problem).to_have_count(0)
    page.get_by_role("button", name="Process document").click()
    expect(page).to_have_url(re.compile(r"/dashboard/batches/[0-9a-f-]{36}/$"))
    assert page.evaluate("window.cspViolations") == []
