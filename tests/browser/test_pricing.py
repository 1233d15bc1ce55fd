"""The public pricing page as a visitor and a subscriber see it: each plan's button says what it
does and does it, and the page carries nothing meant for the people who run Sheaf."""

from __future__ import annotations

import pytest

from accounts.models import User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long and unusual passphrase 7"


def plan_buttons(page) -> list[str]:
    return [text.strip() for text in page.locator("[data-plan-action]").all_inner_texts()]


def test_a_visitor_starts_with_a_plan_and_a_paid_one_lands_on_billing(page, live_server, shots):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/pricing/")
    shots("pricing-signed-out")

    assert plan_buttons(page) == ["Start with Free", "Start with Plus", "Start with Growth"]
    text = page.locator("main").inner_text()
    for internal in ("staff", "admin", "switched on"):
        assert internal not in text.lower()

    page.get_by_role("link", name="Start with Plus").click()
    expect(page).to_have_url(f"{live_server.url}/accounts/signup/?next=/billing/")
    page.fill("input[name=email]", "erin@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.get_by_role("button", name="Sign up").click()

    expect(page).to_have_url(live_server.url + "/billing/")
    shots("billing-after-sign-up")
    assert User.objects.filter(email="erin@example.com").exists()


def test_a_subscriber_sees_their_plan_and_a_way_to_switch(page, live_server, sign_in, alice):
    from playwright.sync_api import expect

    sign_in(alice)
    page.goto(live_server.url + "/pricing/")

    plus = page.locator("section.plan", has=page.get_by_role("heading", name="Plus"))
    expect(plus.get_by_text("Your plan")).to_be_visible()
    assert plan_buttons(page) == ["Switch to Free in Billing", "Switch to Growth in Billing"]

    page.get_by_role("link", name="Switch to Growth in Billing").click()
    expect(page).to_have_url(live_server.url + "/billing/")
