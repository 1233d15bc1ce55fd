"""`manage.py batch …`, the operator's terminal: process, report, monitor, retry, cancel, create
(batches/management/commands/batch.py), run with call_command against the real services."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import OrmQ

from accounts.models import MonthlyUsage
from accounts.selectors import month_start
from batches import pipeline, services
from batches.models import BatchProcess
from documents.models import Document, result_value_counts
from samples.invoices import Layout, invoice, invoices
from tests.batches.test_batch_controls import add_document, state_of
from tests.batches.test_drain import INVOICES
from tests.factories import BatchFactory
from tests.support.documents import encrypted_pdf, report_lines, text_pdf
from tests.support.flaky import FlakyEngine


@dataclass
class Output:
    stdout: str
    stderr: str


def batch(*args: str) -> Output:
    """Run `manage.py batch ARGS`; CommandError and SystemExit propagate to the test."""
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("batch", *args, stdout=stdout, stderr=stderr)
    return Output(stdout.getvalue(), stderr.getvalue())


def batch_failing(*args: str) -> tuple[int, Output]:
    """Run a command expected to exit non-zero without a CommandError: (status, output)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("batch", *args, stdout=stdout, stderr=stderr)
    return exit_info.value.code, Output(stdout.getvalue(), stderr.getvalue())


def one_line(text: str) -> str:
    return " ".join(text.split())


def short(pk: uuid.UUID) -> str:
    """An id as the tables show it: its first 8 characters."""
    return str(pk)[:8]


def cells(line: str) -> list[str]:
    """The cells of one line of a table, empty ones included."""
    return [cell.strip() for cell in line.strip().split("│")[1:-1]]


def generated_invoices(count: int) -> list[ContentFile]:
    """Invoice PDFs in every language, laid out so the offline engine reads them."""
    return [
        ContentFile(made.pdf, name=f"generated-{n:02d}.pdf")
        for n, made in enumerate(invoices(count, layouts=[Layout.BLOCK]))
    ]


def other_readable_pdfs() -> list[ContentFile]:
    """PDFs unlike those invoices: a four-page report, invoices laid out as a table (one of them
    three pages long), and one that the empty password opens."""
    return [
        ContentFile(text_pdf(*report_lines(4)), name="report.pdf"),
        ContentFile(invoice(1, layout=Layout.TABLE).pdf, name="table.pdf"),
        ContentFile(invoice(2, layout=Layout.TABLE, lines=70).pdf, name="long-table.pdf"),
        ContentFile(
            encrypted_pdf(
                invoice(3).pdf, user_password="", owner_password="o", algorithm="AES-256"
            ),
            name="restricted.pdf",
        ),
    ]


def encrypted_file() -> ContentFile:
    locked = encrypted_pdf(invoice(4).pdf, user_password="test", algorithm="RC4-128")
    return ContentFile(locked, name="encrypted-file.pdf")


def ledger() -> list[dict[str, Any]]:
    """Everything a run could change about any document or batch."""
    documents = Document.objects.order_by("pk").values(
        "pk",
        "status",
        "attempts",
        "lease_token",
        "lease_expires_at",
        "next_attempt_at",
        "read_at",
        "result",
        "error_code",
        "updated_at",
    )
    batches = BatchProcess.objects.order_by("pk").values(
        "pk", "status", "started_at", "last_claimed_at", "updated_at"
    )
    return [*documents, *batches]


def queued_batch(user, *files: Any, prompt: str = "invoice number, date, total") -> BatchProcess:
    return services.batch_create(user=user, files=list(files), prompt=prompt)


@pytest.fixture(autouse=True)
def _local_engine(settings) -> None:
    settings.SHEAF_EXTRACTION_ENGINE = "local"


@pytest.fixture(autouse=True)
def _output_to_a_file(monkeypatch) -> None:
    """Tables laid out as for a file (200 columns), whatever terminal runs the tests."""
    monkeypatch.delenv("COLUMNS", raising=False)


# --- process ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_process_all_in_parallel_completes_a_batch_and_exits_zero(grace):
    created = queued_batch(grace, *generated_invoices(12), *other_readable_pdfs())

    output = batch("process", "--all", "--parallel", "8")

    created.refresh_from_db()
    assert created.status == BatchProcess.Status.COMPLETED
    documents = list(created.documents.all())
    assert len(documents) == 16
    assert {d.status for d in documents} == {Document.Status.COMPLETED}
    assert all(d.attempts == 1 and d.lease_token is None for d in documents)
    seventh = created.documents.get(original_filename="generated-07.pdf")
    expected = invoices(12, layouts=[Layout.BLOCK])[7].labels.invoice_number
    assert seventh.result["fields"]["invoice number"]["value"] == expected
    assert summary_row(output, created.pk)[2:6] == ["completed", "16", "0", "0"]
    assert "Done in" in output.stdout and "16 completed." in one_line(output.stdout)
    assert "failed" not in output.stderr
    # Its values per status and its checks, as the documents store them; three fields each.
    values, checks = outcome_row(output, created.pk)
    assert values == stored_value_counts(created)
    assert sum(values.values()) == 16 * 3
    assert checks == stored_checks(created) and sum(checks.values()) == 16


@pytest.mark.django_db(transaction=True)
def test_process_exits_one_and_lists_the_encrypted_pdf_with_its_error_code(grace):
    created = queued_batch(grace, *generated_invoices(3), encrypted_file())

    status, output = batch_failing("process", "--all", "--parallel", "8")

    assert status == 1
    failed = created.documents.get(original_filename="encrypted-file.pdf")
    assert (failed.status, failed.error_code) == (Document.Status.FAILED, "encrypted")
    assert created.documents.filter(status=Document.Status.COMPLETED).count() == 3
    created.refresh_from_db()
    assert created.status == BatchProcess.Status.COMPLETED_WITH_ERRORS
    assert "Failed documents" in output.stdout
    failure_row = next(line for line in output.stdout.splitlines() if "encrypted-file.pdf" in line)
    assert cells(failure_row)[:4] == [
        short(failed.pk),
        short(created.pk),
        "encrypted-file.pdf",
        "encrypted",
    ]
    assert "password-protected" in one_line(output.stdout)
    assert "1 document failed." in output.stderr


@pytest.mark.django_db(transaction=True)
def test_process_verbose_prints_each_documents_outcome(alice):
    created = queued_batch(alice, *generated_invoices(2), encrypted_file())
    ids = {d.original_filename: d.pk for d in created.documents.all()}

    _, output = batch_failing("process", "--batch", str(created.pk), "-v")

    lines = output.stdout.splitlines()
    for name in ("generated-00.pdf", "generated-01.pdf"):
        assert f"completed {name} ({short(ids[name])})" in lines
    assert any(
        line.startswith(
            f"failed    encrypted-file.pdf ({short(ids['encrypted-file.pdf'])}): encrypted:"
        )
        for line in lines
    )


@pytest.mark.django_db(transaction=True)
def test_process_batch_leaves_other_batches_alone(alice, bob):
    mine = services.batch_create(user=alice, files=generated_invoices(3), prompt="total")
    other = services.batch_create(user=bob, files=generated_invoices(2), prompt="total")
    before = ledger()

    batch("process", "--batch", str(mine.pk), "--parallel", "2")

    assert set(mine.documents.values_list("status", flat=True)) == {Document.Status.COMPLETED}
    untouched = {other.pk, *other.documents.values_list("pk", flat=True)}
    assert [row for row in ledger() if row["pk"] in untouched] == [
        row for row in before if row["pk"] in untouched
    ]


@pytest.mark.django_db(transaction=True)
def test_process_limit_takes_that_many_documents_in_queue_order(alice, caplog):
    created = services.batch_create(user=alice, files=generated_invoices(5), prompt="total")

    output = batch("process", "--limit", "2", "--parallel", "4")

    statuses = list(created.documents.order_by("created_at", "id").values_list("status", flat=True))
    assert statuses == ["completed"] * 2 + ["queued"] * 3
    assert "Done in" in output.stdout and "2 completed" in one_line(output.stdout)
    # The summary counts what is left of the batch.
    assert summary_row(output, created.pk)[3:6] == ["2", "0", "3"]
    # The threads beyond the limit find nothing to take; none of them fails.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.django_db(transaction=True)
def test_process_retries_transient_failures_in_process_with_the_backoff(alice, settings):
    settings.SHEAF_EXTRA_ENGINES = {"flaky": "tests.support.flaky.FlakyEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "flaky"
    settings.SHEAF_RETRY_BASE_SECONDS = 0
    settings.SHEAF_RETRY_MAX_SECONDS = 1
    FlakyEngine.reset()
    created = services.batch_create(user=alice, files=generated_invoices(3), prompt="total")

    output = batch("process", "--batch", str(created.pk), "--retries", "1", "-v")

    documents = list(created.documents.all())
    assert {(d.status, d.attempts) for d in documents} == {(Document.Status.COMPLETED, 2)}
    assert sum(FlakyEngine.calls.values()) == 6
    assert one_line(output.stdout).count("retry generated-") == 3
    FlakyEngine.reset()


@pytest.mark.django_db(transaction=True)
def test_process_retries_zero_fails_a_transient_failure_at_once(alice, settings):
    settings.SHEAF_EXTRA_ENGINES = {"flaky": "tests.support.flaky.FlakyEngine"}
    settings.SHEAF_EXTRACTION_ENGINE = "flaky"
    settings.SHEAF_MAX_ATTEMPTS = 3
    FlakyEngine.reset()
    created = services.batch_create(user=alice, files=generated_invoices(2), prompt="total")

    status, output = batch_failing("process", "--all", "--retries", "0")

    assert status == 1
    for document in created.documents.all():
        assert (document.status, document.attempts) == (Document.Status.FAILED, 1)
        assert document.error_code == "provider_error"
        assert "gave up after 1 attempts" in document.error_message
    assert "2 documents failed." in output.stderr
    FlakyEngine.reset()


@pytest.mark.django_db(transaction=True)
def test_dry_run_lists_the_queue_and_changes_nothing(alice, bob):
    first = services.batch_create(user=alice, files=generated_invoices(2), prompt="total")
    services.batch_create(user=bob, files=generated_invoices(1), prompt="total")
    before = ledger()
    usage = list(MonthlyUsage.objects.order_by("pk").values("user_id", "documents"))

    output = batch("process", "--all", "--dry-run", "--parallel", "8")
    limited = batch("process", "--batch", str(first.pk), "--dry-run", "--limit", "1")

    assert ledger() == before
    assert list(MonthlyUsage.objects.order_by("pk").values("user_id", "documents")) == usage
    for document in Document.objects.all():
        row = next(line for line in output.stdout.splitlines() if short(document.pk) in line)
        assert document.original_filename in row and short(document.batch_id) in row
    assert "3 documents would be processed." in output.stdout
    assert "1 document would be processed of 2 waiting." in limited.stdout
    assert "generated-00.pdf" in limited.stdout and "generated-01.pdf" not in limited.stdout


@pytest.mark.django_db
def test_dry_run_shows_when_a_retry_in_backoff_falls_due(alice):
    waiting = BatchFactory(user=alice, status=BatchProcess.Status.PROCESSING)
    add_document(
        waiting, "later.pdf", "queued", next_attempt_at=timezone.now() + timedelta(minutes=5)
    )
    before = ledger()

    output = batch("process", "--dry-run")

    row = next(line for line in output.stdout.splitlines() if "later.pdf" in line)
    assert "in 4m 5" in row or "in 5m 00s" in row
    assert ledger() == before


@pytest.mark.django_db(transaction=True)
def test_process_with_nothing_to_do_says_so_and_exits_zero(alice):
    output = batch("process")
    assert "nothing to process" in output.stdout


# --- unknown ids --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ("report",),
        ("retry",),
        ("cancel",),
        ("process", "--batch"),
        ("process", "--dry-run", "--batch"),
    ],
)
def test_an_unknown_or_malformed_batch_id_is_a_clear_command_error(args):
    unknown = str(uuid.uuid4())
    with pytest.raises(CommandError, match=f"No batch with id {unknown}"):
        batch(*args, unknown)
    with pytest.raises(CommandError, match="'not-a-uuid' is not a batch id"):
        batch(*args, "not-a-uuid")


# --- report -------------------------------------------------------------------------------------


@pytest.fixture
def reported(alice) -> BatchProcess:
    finished = BatchFactory(
        user=alice, name="March invoices", status=BatchProcess.Status.COMPLETED_WITH_ERRORS
    )
    add_document(finished, "paid.pdf", "completed")
    add_document(finished, "lost.pdf", "failed")
    pipeline.batch_refresh(batch_id=finished.pk)
    return finished


@pytest.mark.django_db
def test_report_json_is_the_dashboards_export(reported):
    output = batch("report", str(reported.pk), "--format", "json")

    payload = json.loads(output.stdout)
    assert payload["batch"]["id"] == str(reported.pk)
    documents = {d["filename"]: d for d in payload["documents"]}
    assert documents["paid.pdf"]["result"]["fields"]["invoice number"]["value"] == "INV-001"
    assert documents["lost.pdf"]["error"]["code"] == "provider_error"


@pytest.mark.django_db
def test_report_csv_has_a_row_per_document_and_a_column_per_field(reported):
    output = batch("report", str(reported.pk), "--format", "csv")

    rows = list(csv.DictReader(io.StringIO(output.stdout.removeprefix("\ufeff"))))
    assert [row["filename"] for row in rows] == ["paid.pdf", "lost.pdf"]
    assert rows[0]["invoice number"] == "INV-001" and rows[0]["total"] == "120.00"
    assert rows[1]["error_code"] == "provider_error"


@pytest.mark.django_db
def test_report_md_is_a_markdown_table(reported):
    output = batch("report", str(reported.pk), "--format", "md")

    assert output.stdout.startswith("# March invoices")
    assert "| filename | status |" in output.stdout
    assert "| paid.pdf | completed |" in output.stdout


@pytest.mark.django_db
def test_report_writes_a_file_with_the_format_from_its_extension(reported, tmp_path):
    target = tmp_path / "results.xlsx"

    output = batch("report", str(reported.pk), "-o", str(target))

    sheet = openpyxl.load_workbook(target).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0][0] == "filename"
    assert [row[0] for row in values[1:3]] == ["paid.pdf", "lost.pdf"]
    assert f"Wrote {target} (xlsx" in output.stdout


def settled_document(batch: BatchProcess, name: str, fields: dict[str, Any], checks: str) -> None:
    """A completed document whose result carries statuses and checks, counted as the pipeline
    counts them."""
    result = {"engine": "local", "model": None, "fields": fields, "checks": {"status": checks}}
    counts = result_value_counts(result)
    add_document(
        batch,
        name,
        "completed",
        result=result,
        **{f"count_{status}": n for status, n in counts.statuses.items()},
    )


def cell(status: str, value: Any = "x") -> dict[str, Any]:
    kept = status not in ("invalid", "missing")
    return {"value": value if kept else None, "quote": value if kept else None, "status": status}


@pytest.fixture
def checked(alice) -> BatchProcess:
    """Two completed documents (one reconciled, one whose checks failed), one failed."""
    finished = BatchFactory(user=alice, status=BatchProcess.Status.COMPLETED_WITH_ERRORS)
    settled_document(
        finished,
        "a.pdf",
        {"net": cell("checked"), "tax": cell("checked"), "total": cell("checked")},
        "reconciled",
    )
    settled_document(
        finished,
        "b.pdf",
        {"net": cell("found"), "tax": cell("invalid"), "total": cell("unverified")},
        "failed",
    )
    add_document(finished, "c.pdf", "failed")
    pipeline.batch_refresh(batch_id=finished.pk)
    return finished


SAID = (
    "Values: 3 checked, 1 found on the page, 1 not found in the text, 1 invalid, 0 missing. "
    "Checks: 1 document reconciled, 1 failed, 0 not checked."
)


@pytest.mark.django_db
def test_report_to_a_file_says_the_values_per_status_and_the_checks(checked, tmp_path):
    output = batch("report", str(checked.pk), "-o", str(tmp_path / "out.csv"))

    assert SAID in one_line(output.stdout)


@pytest.mark.django_db
def test_report_to_stdout_says_them_on_stderr_and_keeps_stdout_the_export(checked):
    output = batch("report", str(checked.pk), "--format", "json")

    assert len(json.loads(output.stdout)["documents"]) == 3
    assert one_line(output.stderr) == SAID


@pytest.mark.django_db
def test_report_xlsx_to_the_terminal_is_refused(reported):
    with pytest.raises(CommandError, match="-o FILE"):
        batch("report", str(reported.pk), "--format", "xlsx")


# --- monitor ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_monitor_once_shows_running_batches_with_counts_rate_and_eta(alice, bob):
    now = timezone.now()
    running = BatchFactory(
        user=alice,
        name="Running",
        status=BatchProcess.Status.PROCESSING,
        started_at=now - timedelta(minutes=4),
    )
    for n in range(4):
        add_document(running, f"done-{n}.pdf", "completed", started_at=now - timedelta(minutes=4))
    add_document(running, "busy.pdf", "processing")
    for n in range(3):
        add_document(running, f"waiting-{n}.pdf", "queued")
    finished = BatchFactory(user=bob, name="Finished", status=BatchProcess.Status.COMPLETED)

    output = batch("monitor", "--once")

    lines = output.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.startswith(f"│ {short(running.pk)}"))
    first, second = cells(lines[at]), cells(lines[at + 1])
    # name, queued, processing, completed, failed, done, ETA; under them status, owner, rate
    assert first[1:7] == ["Running", "3", "1", "4", "0", "50%"]
    assert first[7] in ("4m 00s", "3m 59s", "4m 01s")  # 4 left at 1 a minute
    assert (second[0], second[1], second[7]) == ("processing", "alice@example.com", "1.0/min")
    assert short(finished.pk) not in output.stdout


@pytest.mark.django_db
def test_monitor_once_shows_a_running_batchs_values_per_status_and_checks(checked):
    BatchProcess.objects.filter(pk=checked.pk).update(status=BatchProcess.Status.PROCESSING)
    add_document(checked, "waiting.pdf", "queued")

    output = batch("monitor", "--once")

    values, checks = outcome_row(output, checked.pk)
    assert values == {"checked": 3, "found": 1, "unverified": 1, "invalid": 1, "missing": 0}
    assert checks == {"reconciled": 1, "failed": 1, "not_checked": 0}
    assert "Not found" in output.stdout and "Checks failed" in output.stdout


@pytest.mark.django_db
def test_monitor_once_with_nothing_running_says_so(alice):
    BatchFactory(user=alice, status=BatchProcess.Status.COMPLETED)
    assert "No batch is running." in batch("monitor", "--once").stdout


# --- retry and cancel ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_retry_requeues_the_failed_documents_and_says_so(
    reported, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        output = batch("retry", str(reported.pk))

    lost = reported.documents.get(original_filename="lost.pdf")
    assert (lost.status, lost.attempts, lost.error_code) == (Document.Status.QUEUED, 0, "")
    reported.refresh_from_db()
    assert reported.status == BatchProcess.Status.PROCESSING
    assert output.stdout.strip() == (
        f"Batch {reported.pk} (March invoices): 1 failed document queued again; "
        "status completed_with_errors -> processing."
    )
    assert OrmQ.objects.count() >= 1  # workers were kicked


@pytest.mark.django_db
def test_retry_with_nothing_failed_is_refused_and_changes_nothing(alice):
    done = BatchFactory(user=alice, name="All good", status=BatchProcess.Status.COMPLETED)
    add_document(done, "paid.pdf", "completed")
    before = state_of(done)

    with pytest.raises(CommandError, match="has no failed documents to retry"):
        batch("retry", str(done.pk))

    assert state_of(done) == before


@pytest.mark.django_db
def test_cancel_cancels_the_queued_documents_and_says_so(alice):
    running = BatchFactory(user=alice, name="Running", status=BatchProcess.Status.PROCESSING)
    add_document(running, "busy.pdf", "processing")
    add_document(running, "later-1.pdf", "queued")
    add_document(running, "later-2.pdf", "queued")
    used = MonthlyUsage.objects.get(user=alice, month=month_start()).documents

    output = batch("cancel", str(running.pk))

    running.refresh_from_db()
    assert running.status == BatchProcess.Status.CANCELED
    statuses = dict(running.documents.values_list("original_filename", "status"))
    assert statuses == {
        "busy.pdf": "processing",
        "later-1.pdf": "canceled",
        "later-2.pdf": "canceled",
    }
    assert MonthlyUsage.objects.get(user=alice, month=month_start()).documents == used - 2
    assert output.stdout.strip() == (
        f"Batch {running.pk} (Running): canceled; 2 documents canceled before processing, "
        "1 in flight will finish."
    )


@pytest.mark.django_db
def test_cancelling_a_finished_batch_is_refused_and_changes_nothing(reported):
    before = state_of(reported)

    with pytest.raises(CommandError, match="has already finished"):
        batch("cancel", str(reported.pk))

    assert state_of(reported) == before


# --- create -------------------------------------------------------------------------------------


SCANNED_INVOICE = invoice(5, language="fr-FR")


@pytest.fixture
def folder(tmp_path) -> Path:
    """A folder of documents as an operator would have it: nested, with things to leave out."""
    root = tmp_path / "inbox"
    (root / "march" / "scans").mkdir(parents=True)
    for name, text in INVOICES.items():
        (root / "march" / name).write_text(text)
    (root / "march" / "scans" / SCANNED_INVOICE.filename).write_bytes(SCANNED_INVOICE.pdf)
    (root / "notes.md").write_text("not a document")
    (root / ".hidden.txt").write_text("left out")
    return root


def batch_rows(output: Output, batch_id: uuid.UUID) -> list[list[str]]:
    """The cells of each table's row for this batch, in the order the tables come."""
    rows = [line for line in output.stdout.splitlines() if line.startswith(f"│ {short(batch_id)}")]
    return [cells(row) for row in rows]


def summary_row(output: Output, batch_id: uuid.UUID) -> list[str]:
    """The cells of the summary table's row for this batch."""
    return batch_rows(output, batch_id)[0]


def outcome_row(output: Output, batch_id: uuid.UUID) -> tuple[dict[str, int], dict[str, int]]:
    """The values per status and the documents per checks outcome, from the "Values and
    checks" table's row for this batch."""
    cells = [int(cell) for cell in batch_rows(output, batch_id)[1][1:]]
    statuses = ("checked", "found", "unverified", "invalid", "missing")
    values = dict(zip(statuses, cells[:5], strict=True))
    checks = dict(zip(("reconciled", "failed", "not_checked"), cells[5:], strict=True))
    return values, checks


def stored_value_counts(batch: BatchProcess) -> dict[str, int]:
    """What the batch's completed documents' count_* columns add up to."""
    completed = batch.documents.filter(status=Document.Status.COMPLETED)
    return {
        status: sum(getattr(document, f"count_{status}") for document in completed)
        for status in ("checked", "found", "unverified", "invalid", "missing")
    }


def stored_checks(batch: BatchProcess) -> dict[str, int]:
    completed = batch.documents.filter(status=Document.Status.COMPLETED)
    seen = Counter(document.result["checks"]["status"] for document in completed)
    return {status: seen[status] for status in ("reconciled", "failed", "not_checked")}


@pytest.mark.django_db
def test_create_walks_folders_and_queues_a_batch(
    alice, folder, tmp_path, media_files, django_capture_on_commit_callbacks
):
    extra = tmp_path / "single.txt"
    extra.write_text("Invoice number: S-1\nTotal: 5.00 EUR\n")

    with django_capture_on_commit_callbacks(execute=True):
        output = batch(
            "create",
            "--user",
            "ALICE@example.com",
            "--prompt",
            "invoice number, date, total",
            "--fields",
            "invoice number, date:date, total:number -- amount due",
            "--name",
            "March from the CLI",
            str(folder),
            str(extra),
        )

    created = BatchProcess.objects.get(pk=uuid.UUID(output.stdout.strip()))
    assert (created.user, created.name, created.status) == (alice, "March from the CLI", "queued")
    assert created.fields == [
        {"name": "invoice number", "type": "string", "description": ""},
        {"name": "date", "type": "date", "description": ""},
        {"name": "total", "type": "number", "description": "amount due"},
    ]
    names = sorted(created.documents.values_list("original_filename", flat=True))
    assert names == sorted([*INVOICES, SCANNED_INVOICE.filename, "single.txt"])
    assert len(media_files()) == len(names)
    assert "left out 2 files" in output.stderr
    assert f"queued for alice@example.com: {len(names)} documents" in output.stderr
    assert OrmQ.objects.count() == settings.SHEAF_WORKERS  # one drain per worker, after commit


@pytest.mark.django_db
def test_create_takes_a_table_field_and_a_required_one(alice, folder):
    fields = "total!:number\nline items: table(description; amount:number) -- one per line"

    output = batch("create", "--user", alice.email, "--prompt=x", "--fields", fields, str(folder))

    created = BatchProcess.objects.get(pk=uuid.UUID(output.stdout.strip()))
    total, line_items = created.fields
    assert total == {"name": "total", "type": "number", "description": "", "required": True}
    assert (line_items["type"], line_items["description"]) == ("table", "one per line")
    assert [(c["name"], c["type"]) for c in line_items["columns"]] == [
        ("description", "string"), ("amount", "number")
    ]  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_create_then_process_runs_the_new_batch(alice, folder):
    created = batch("create", "--user", alice.email, "--prompt", "invoice number", str(folder))
    batch_id = uuid.UUID(created.stdout.strip())

    output = batch("process", "--batch", str(batch_id))

    assert summary_row(output, batch_id)[2:6] == ["completed", "5", "0", "0"]


@pytest.mark.django_db
def test_create_for_a_free_user_with_two_files_is_refused_and_stores_nothing(
    frank, folder, media_files
):
    march = folder / "march"
    with pytest.raises(CommandError) as refused:
        batch(
            "create",
            "--user",
            frank.email,
            "--prompt",
            "total",
            str(march / "hooli.csv"),
            str(march / "initech.txt"),
        )

    message = str(refused.value)
    assert "too_many_files: Your Free plan allows 1 file per batch; this submission has 2" in (
        message
    )
    assert not BatchProcess.objects.exists()
    assert not Document.objects.exists()
    assert media_files() == []
    assert not MonthlyUsage.objects.filter(user=frank, documents__gt=0).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--mode", "economy"), "plan_limit: The economy lane is part of the Growth plan"),
        (("--fields", "total:money"), "invalid_fields: Field 'total': unknown type 'money'"),
        (
            ("--fields", "total:money\nitems: table()"),
            r"invalid_fields: 2 problems in the fields: Field 'total': unknown type 'money'.*"
            r"Field 'items': a table needs at least one column\.",
        ),
        (
            ("--fields", "total, items: table(a; b:number)"),
            "invalid_fields: A table field needs the one-field-per-line form",
        ),
        (("--prompt", " "), "invalid_prompt: Say what to extract"),
    ],
)
def test_create_refusals_carry_the_services_code_and_message(
    alice, folder, media_files, extra, expected
):
    with pytest.raises(CommandError, match=expected):
        batch("create", "--user", alice.email, "--prompt", "total", *extra, str(folder))

    assert not BatchProcess.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_create_refuses_a_file_whose_content_is_not_its_type(alice, tmp_path, media_files):
    fake = tmp_path / "invoice.pdf"
    fake.write_text("<html><body>not a pdf</body></html>")

    with pytest.raises(CommandError, match=r"unsupported_type: invoice\.pdf has a \.pdf name"):
        batch("create", "--user", alice.email, "--prompt", "total", str(fake))

    assert not BatchProcess.objects.exists()
    assert media_files() == []


@pytest.mark.django_db
def test_create_with_an_empty_folder_has_no_files(alice, tmp_path):
    with pytest.raises(CommandError, match="no_files: Choose at least one file"):
        batch("create", "--user", alice.email, "--prompt", "total", str(tmp_path))


@pytest.mark.django_db
def test_create_for_an_unknown_user_or_a_missing_path_is_a_command_error(alice, folder):
    with pytest.raises(CommandError, match=r"No user with email nobody@example\.com"):
        batch("create", "--user", "nobody@example.com", "--prompt", "total", str(folder))
    with pytest.raises(CommandError, match="No such file or folder: /no/such/place"):
        batch("create", "--user", alice.email, "--prompt", "total", "/no/such/place")
    assert not BatchProcess.objects.exists()


# --- how it reads: verbosity, width, log lines ------------------------------------------------


LONG_NAME = "quarterly-supplier-invoice-from-a-vendor-whose-name-goes-on-and-on-and-on"


@pytest.fixture
def terminal_log(monkeypatch) -> io.StringIO:
    """What the terminal handler of settings.LOGGING writes."""
    written = io.StringIO()
    (handler,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    monkeypatch.setattr(handler, "stream", written)
    return written


def column_text(output: str, title: str, column: int) -> str:
    """One column of the table under `title`, its wrapped lines joined without spaces."""
    lines = output[output.index(title) :].splitlines()
    end = next(n for n, line in enumerate(lines) if line.startswith("└"))
    body = [line for line in lines[:end] if line.startswith("│")]
    return "".join("".join(cells(line)[column].split()) for line in body)


@pytest.mark.django_db(transaction=True)
def test_process_at_100_columns_keeps_every_line_within_them_and_shows_the_whole_error(
    alice, monkeypatch
):
    monkeypatch.setenv("COLUMNS", "100")
    locked = encrypted_file()
    locked.name = f"{LONG_NAME}-locked.pdf"
    named = [
        ContentFile(made.read(), name=f"{LONG_NAME}-{n}.pdf")
        for n, made in enumerate(generated_invoices(2))
    ]
    created = queued_batch(alice, *named, locked)
    created.name = f"March {LONG_NAME} " * 2  # 160 characters, within the column's 200
    created.save()

    _, output = batch_failing("process", "--batch", short(created.pk), "-v")

    lines = output.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    failed = created.documents.get(status=Document.Status.FAILED)
    row = next(line for line in lines if line.startswith(f"│ {short(failed.pk)}"))
    assert cells(row)[1:4:2] == [short(created.pk), "encrypted"]
    message = column_text(output.stdout, "Failed documents", 4)
    assert message == "".join(failed.error_message.split())  # whole, over several lines
    assert column_text(output.stdout, "Failed documents", 2) == locked.name


@pytest.mark.django_db
def test_monitor_and_dry_run_at_100_columns_stay_within_them(alice, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    running = BatchFactory(
        user=alice, name=f"March {LONG_NAME}", status=BatchProcess.Status.PROCESSING
    )
    add_document(running, f"{LONG_NAME}.pdf", "queued")
    add_document(running, "done.pdf", "completed", started_at=timezone.now())

    for output in (batch("monitor", "--once"), batch("process", "--dry-run")):
        assert max(len(line) for line in output.stdout.splitlines()) <= 100
        assert f"│ {short(running.pk)}" in output.stdout


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "verbosity", [("-v",), ("--verbosity", "2"), ("-vv",)], ids=["-v", "--verbosity 2", "-vv"]
)
def test_process_v_prints_each_documents_extracted_values(alice, verbosity):
    created = queued_batch(alice, *generated_invoices(2))

    output = batch("process", "--batch", str(created.pk), "--parallel", "2", *verbosity)

    expected = [made.labels.invoice_number for made in invoices(2, layouts=[Layout.BLOCK])]
    for document in created.documents.all():
        lines = output.stdout.splitlines()
        at = lines.index(f"completed {document.original_filename} ({short(document.pk)})")
        indented = itertools.takewhile(lambda line: line.startswith("  "), lines[at + 1 :])
        shown = {words[0]: words[1:] for words in (line.split() for line in indented)}
        fields = document.result["fields"]
        assert shown["total"] == [str(fields["total"]["value"]), fields["total"]["status"]]
        number = " ".join(shown["invoice"][1:-1])
        assert number == fields["invoice number"]["value"] and number in expected


@pytest.mark.django_db(transaction=True)
def test_verbosity_before_the_action_means_what_it_means_after(alice):
    created = queued_batch(alice, *generated_invoices(1))

    stdout = io.StringIO()
    call_command("batch", "--verbosity", "2", "process", "--batch", str(created.pk), stdout=stdout)

    name = created.documents.get().original_filename
    assert f"completed {name}" in stdout.getvalue() and "invoice number" in stdout.getvalue()


@pytest.mark.django_db(transaction=True)  # the workers are kicked on commit, in the command
def test_create_writes_no_queue_log_lines_unless_asked(alice, folder, terminal_log):
    args = ("create", "--user", alice.email, "--prompt", "total", str(folder))

    normal = batch(*args)
    assert OrmQ.objects.count() == settings.SHEAF_WORKERS
    assert terminal_log.getvalue() == ""  # the workers were kicked, the lines held back
    assert normal.stderr.count("\n") == 2  # the files left out; the batch queued
    uuid.UUID(normal.stdout.strip())

    quiet = batch(*args, "-q")
    assert (quiet.stderr, terminal_log.getvalue()) == ("", "")
    uuid.UUID(quiet.stdout.strip())

    loud = batch(*args, "-vv")
    assert "Enqueued" in terminal_log.getvalue() and "created by user" in terminal_log.getvalue()
    assert "taking " in loud.stderr
    uuid.UUID(loud.stdout.strip())


@pytest.mark.django_db(transaction=True)
def test_process_quiet_prints_nothing_but_says_failures_by_exit_status(alice):
    created = queued_batch(alice, *generated_invoices(1), encrypted_file())

    status, output = batch_failing("process", "--batch", str(created.pk), "-q")

    assert status == 1 and output.stdout == ""
    assert output.stderr.strip() == "1 document failed."
    assert created.documents.filter(status=Document.Status.COMPLETED).count() == 1


class Terminal(io.StringIO):
    """A terminal's screen as bytes written to it: rich draws its live progress bar here."""

    def isatty(self) -> bool:
        return True

    def screen(self) -> list[str]:
        """The lines as they would show: a carriage return and an erase start a line again."""
        ansi = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
        return [ansi.sub("", line.split("\r")[-1]) for line in self.getvalue().split("\n")]


@pytest.mark.django_db(transaction=True)
def test_log_lines_during_the_progress_bar_print_above_it_not_into_it(alice, monkeypatch):
    created = queued_batch(alice, *generated_invoices(3))
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "xterm")
    screen = Terminal()
    (handler,) = [h for h in logging.getLogger().handlers if h.name == "console"]
    monkeypatch.setattr(handler, "stream", screen)  # logs and bar on one terminal

    call_command("batch", "process", "--batch", str(created.pk), "-vv", stdout=screen)

    lines = screen.screen()
    assert any(line.startswith("Processing ━") for line in lines)  # the bar was drawn
    logged = [line for line in lines if "finished" in line and str(created.pk)[:8] in line]
    assert logged  # the batch's end, logged from a worker thread while the bar was up
    assert not any("Processing" in line for line in logged)
    assert max(len(line) for line in lines) <= 100


@pytest.mark.django_db
def test_every_action_takes_a_batch_ids_first_characters(alice):
    first = BatchFactory(
        id=uuid.UUID("abcdef12-0000-4000-8000-000000000001"), user=alice, name="First"
    )
    BatchFactory(id=uuid.UUID("abcdef12-ffff-4000-8000-000000000002"), user=alice)
    add_document(first, "lost.pdf", "failed")
    pipeline.batch_refresh(batch_id=first.pk)

    with pytest.raises(CommandError, match="More than one batch's id starts with abcdef12"):
        batch("retry", "abcdef12")
    with pytest.raises(CommandError, match="No batch has an id starting with 12345678"):
        batch("retry", "12345678")
    with pytest.raises(CommandError, match="'abc' is not a batch id"):
        batch("retry", "abc")
    output = batch("retry", "ABCDEF12-0000")

    assert output.stdout.startswith(f"Batch {first.pk} (First): 1 failed document queued again")
    assert first.documents.get().status == Document.Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_names_and_values_in_brackets_show_as_they_are(alice):
    locked = encrypted_file()
    locked.name = "invoice [draft].pdf"
    note = ContentFile(b"Invoice number: INV-[b]7\nTotal: 12.00 EUR\n", name="[b]note.txt")
    created = queued_batch(alice, locked, note)
    created.name = "March [final]"
    created.save()

    _, output = batch_failing("process", "--batch", str(created.pk), "-v")

    lines = output.stdout.splitlines()
    assert any(line.startswith("failed    invoice [draft].pdf (") for line in lines)
    assert any(line.startswith("completed [b]note.txt (") for line in lines)
    number = created.documents.get(original_filename="[b]note.txt").result["fields"]
    assert number["invoice number"]["value"] == "INV-[b]7"
    assert any(
        line.split() == ["invoice", "number", "INV-[b]7", number["invoice number"]["status"]]
        for line in lines
    )
    failed = next(line for line in lines if line.startswith("│") and "[draft]" in line)
    assert cells(failed)[2] == "invoice [draft].pdf"
    assert summary_row(output, created.pk)[1] == "March [final]"
