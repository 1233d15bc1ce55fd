"""examples/sheaf_client.py, exactly as the README shows it, against a live server and a real
django-q2 cluster: upload, poll until the batch is finished, download the CSV."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

from accounts.services import api_key_create
from batches.models import BatchProcess
from tests.support.cluster import REPO, Cluster

pytestmark = pytest.mark.cluster

INVOICES = {
    "acme-0001.txt": (
        "ACME Supplies Ltd\n12 Harbour Road, Bristol\n\n"
        "Invoice number: INV-2024-0001\nDate: 14 March 2024\nTotal: 1,234.50 EUR\n"
    ),
    "initech.txt": "Initech\nInvoice number: IT-300\nDate: 31/05/2024\nTotal: £12,000.00\n",
}


@pytest.mark.django_db(transaction=True)
def test_the_example_client_uploads_waits_and_downloads_the_csv(alice, live_server, tmp_path):
    _, secret = api_key_create(user=alice, name="example")
    for name, text in INVOICES.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "results.csv"
    cluster = Cluster(tmp_path / "cluster.log", SHEAF_EXTRACTION_ENGINE="local")
    cluster.start()
    try:
        run = subprocess.run(  # noqa: S603 (our own example, with this interpreter)
            [
                sys.executable,
                str(REPO / "examples" / "sheaf_client.py"),
                "--prompt",
                "invoice number, date, total",
                "--fields",
                "invoice number, date:date, total:number",
                "--poll-seconds",
                "0.5",
                "--out",
                str(out),
                *(str(tmp_path / name) for name in INVOICES),
            ],
            env={"SHEAF_URL": live_server.url, "SHEAF_API_KEY": secret, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        cluster.stop()

    log = run.stderr + (tmp_path / "cluster.log").read_text()[-3000:]
    assert run.returncode == 0, log
    batch = BatchProcess.objects.get(user=alice)
    assert batch.status == BatchProcess.Status.COMPLETED
    assert f"created batch {batch.pk}" in run.stderr
    assert f"{batch.pk}: completed (2 completed, 0 failed of 2)" in run.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert [
        (
            r["filename"],
            r["status"],
            r["invoice number"],
            r["date"],
            r["total"],
            r["total currency"],
        )
        for r in rows
    ] == [
        ("acme-0001.txt", "completed", "INV-2024-0001", "2024-03-14", "1234.50", "EUR"),
        ("initech.txt", "completed", "IT-300", "2024-05-31", "12000.00", "GBP"),
    ]
    assert {r["engine"] for r in rows} == {"local"}
