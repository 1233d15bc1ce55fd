"""In a real Chromium, the upload page prices the chosen files before they are sent: pages and
sizes give tokens, the engine's prices give dollars (the economy lane's beside them), computed by
static JS from the prices the server renders, as the server's own estimate computes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from extraction.claude.pricing import estimate_cost
from tests.support.documents import text_pdf

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NOTES = b"a" * 3999 + b"\n"  # 4,000 characters: 1,000 tokens
REPORT = text_pdf(["Page one"], ["Page two"], ["Page three"])
FILES = [
    {"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES},
    {"name": "report.pdf", "mimeType": "application/pdf", "buffer": REPORT},
]


def _choose(page, live_server):
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    page.fill("[name=prompt]", "invoice number, total")
    page.set_input_files("input[name=files]", FILES)


def test_the_estimate_prices_the_chosen_files_with_the_claude_engine(
    page, live_server, sign_in, alice, settings, shots
):
    from playwright.sync_api import expect

    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = "sk-ant-test"  # never called: nothing is submitted
    settings.SHEAF_ANTHROPIC_MODEL = "claude-opus-4-5"
    model = settings.SHEAF_ANTHROPIC_MODEL
    sign_in(alice)

    _choose(page, live_server)

    # What the server would estimate for them, once read: 1,000 tokens of text, 3 scanned pages.
    cost = estimate_cost(characters=4000, pages=1, fields=2, model=model) + estimate_cost(
        characters=0, pages=3, fields=2, model=model
    )
    assert cost == Decimal("0.046")
    estimate = page.locator("[data-estimate-text]")
    expect(estimate).to_have_text(
        "2 files, 4 pages: about 7,200 tokens, about $0.05 (economy lane: about $0.02)."
    )
    shots("claude-estimate")

    page.get_by_role("button", name="Remove notes.txt").click()
    expect(estimate).to_have_text(
        "1 file, 3 pages: about 5,350 tokens, about $0.03 (economy lane: about $0.02)."
    )
    page.fill("[name=prompt]", "invoice number, total, date, supplier")
    expect(estimate).to_have_text(
        "1 file, 3 pages: about 5,550 tokens, about $0.04 (economy lane: about $0.02)."
    )
    assert page.evaluate("window.cspViolations") == []


def test_with_the_offline_engine_the_estimate_says_it_is_free(
    page, live_server, sign_in, alice, settings, shots
):
    from playwright.sync_api import expect

    settings.SHEAF_EXTRACTION_ENGINE = "local"
    sign_in(alice)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    estimate = page.locator("[data-estimate-text]")
    expect(estimate).to_have_text("The offline engine is free: $0.")

    _choose(page, live_server)

    expect(estimate).to_have_text("2 files, 4 pages. The offline engine is free: $0.")
    shots("offline-estimate")
    assert page.evaluate("window.cspViolations") == []


def test_the_one_file_form_of_free_estimates_its_file_too(
    page, live_server, sign_in, frank, settings
):
    from playwright.sync_api import expect

    settings.SHEAF_EXTRACTION_ENGINE = "auto"
    settings.ANTHROPIC_API_KEY = "sk-ant-test"
    settings.SHEAF_ANTHROPIC_MODEL = "claude-opus-4-5"
    sign_in(frank)
    page.goto(f"{live_server.url}/dashboard/batch-upload/")
    page.fill("[name=prompt]", "invoice number, total")

    page.set_input_files("input[name=files]", [FILES[1]])

    expect(page.locator("[data-estimate-text]")).to_have_text(
        "1 file, 3 pages: about 5,350 tokens, about $0.03 (economy lane: about $0.02)."
    )
    assert page.evaluate("window.cspViolations") == []
