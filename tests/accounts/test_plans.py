from __future__ import annotations

import dataclasses
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts.models import Subscription
from accounts.plans import MB, PlanKey, Priority, all_plans, get_plan
from accounts.selectors import user_effective_plan
from tests.factories import UserFactory
from tests.support.admin_forms import admin_form_data

# The table in DESIGN.md, "Plans".
DESIGN_TABLE = {
    "free": {
        "batch_upload": False,
        "files_per_batch": 1,
        "max_file_size": 10 * MB,
        "documents_per_month": 50,
        "submissions_per_hour": 3,
        "priority": Priority.LOW,
        "economy_lane": False,
        "webhooks": False,
    },
    "plus": {
        "batch_upload": True,
        "files_per_batch": 25,
        "max_file_size": 25 * MB,
        "documents_per_month": 1_000,
        "submissions_per_hour": 10,
        "priority": Priority.NORMAL,
        "economy_lane": False,
        "webhooks": True,
    },
    "growth": {
        "batch_upload": True,
        "files_per_batch": 100,
        "max_file_size": 50 * MB,
        "documents_per_month": 10_000,
        "submissions_per_hour": 30,
        "priority": Priority.HIGH,
        "economy_lane": True,
        "webhooks": True,
    },
}


@pytest.fixture
def no_overrides(settings):
    settings.SHEAF_PLAN_LIMITS = {}


def limits(plan) -> dict[str, object]:
    return {name: getattr(plan, name) for name in DESIGN_TABLE["free"]}


# --- Plans and limits -----------------------------------------------------------------------------


def test_the_three_plans_default_to_the_numbers_in_the_design(no_overrides):
    plans = all_plans()

    assert [p.key for p in plans] == ["free", "plus", "growth"]
    assert [p.name for p in plans] == ["Free", "Plus", "Growth"]
    assert {p.key: limits(p) for p in plans} == DESIGN_TABLE


def test_queue_priority_runs_growth_before_plus_before_free(no_overrides):
    free, plus, growth = (get_plan(k) for k in ("free", "plus", "growth"))

    assert growth.priority > plus.priority > free.priority


def test_overriding_one_number_changes_only_that_number(settings):
    settings.SHEAF_PLAN_LIMITS = {}
    before = {p.key: p for p in all_plans()}

    settings.SHEAF_PLAN_LIMITS = {"free": {"documents_per_month": 5}}
    after = {p.key: p for p in all_plans()}

    assert after["free"].documents_per_month == 5
    assert after["free"] == dataclasses.replace(before["free"], documents_per_month=5)
    assert after["plus"] == before["plus"]
    assert after["growth"] == before["growth"]


def test_a_boolean_limit_can_be_overridden(settings):
    settings.SHEAF_PLAN_LIMITS = {"plus": {"economy_lane": True}}

    assert get_plan("plus").economy_lane is True
    assert get_plan("free").economy_lane is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"gold": {"documents_per_month": 5}}, "unknown plans: ['gold']"),
        ({"free": {"pages_per_document": 5}}, "unknown limit 'pages_per_document'"),
        ({"free": {"name": "Gratis"}}, "unknown limit 'name'"),
        ({"free": {"documents_per_month": "5"}}, "['documents_per_month'] must be int"),
        ({"free": {"documents_per_month": 5.0}}, "['documents_per_month'] must be int"),
        ({"free": {"files_per_batch": True}}, "['files_per_batch'] must be int"),
        ({"plus": {"webhooks": 1}}, "['webhooks'] must be bool"),
        ({"free": 5}, "must be a JSON object"),
    ],
)
def test_a_malformed_override_is_a_configuration_error(settings, overrides, message):
    settings.SHEAF_PLAN_LIMITS = overrides

    with pytest.raises(ImproperlyConfigured) as caught:
        all_plans()

    assert message in str(caught.value)


def test_a_malformed_override_names_the_plan_as_the_operator_wrote_it(settings):
    settings.SHEAF_PLAN_LIMITS = {"free": {"documents_per_month": "5"}}

    with pytest.raises(ImproperlyConfigured) as caught:
        all_plans()

    assert str(caught.value) == ("SHEAF_PLAN_LIMITS['free']['documents_per_month'] must be int")


def test_an_override_that_is_not_json_stops_the_settings_from_loading(monkeypatch):
    from batchsite.env import env_json_object

    monkeypatch.setenv("SHEAF_PLAN_LIMITS", '{"free": {"documents_per_month": 5}')
    with pytest.raises(ImproperlyConfigured, match="SHEAF_PLAN_LIMITS is not valid JSON"):
        env_json_object("SHEAF_PLAN_LIMITS")

    monkeypatch.setenv("SHEAF_PLAN_LIMITS", "[1, 2]")
    with pytest.raises(ImproperlyConfigured, match="must be a JSON object"):
        env_json_object("SHEAF_PLAN_LIMITS")


# --- The effective plan ---------------------------------------------------------------------------


def subscribe(user, plan: str, status: str, **extra) -> Subscription:
    return Subscription.objects.create(user=user, plan=plan, status=status, **extra)


def test_without_a_subscription_or_override_a_user_is_on_free(db):
    user = UserFactory()

    effective = user_effective_plan(user)

    assert (effective.plan.key, effective.source) == ("free", "default")


@pytest.mark.parametrize("status", ["active", "trialing"])
def test_a_subscription_in_good_standing_gives_its_plan(db, status):
    user = UserFactory()
    subscribe(user, PlanKey.GROWTH, status)

    effective = user_effective_plan(user)

    assert (effective.plan.key, effective.source) == ("growth", "subscription")


def test_the_staff_override_wins_over_an_active_subscription(db):
    user = UserFactory(plan_override=PlanKey.PLUS)
    subscribe(user, PlanKey.GROWTH, "active")

    effective = user_effective_plan(user)

    assert (effective.plan.key, effective.source) == ("plus", "override")


def test_an_override_can_also_lower_a_subscriber_to_free(db):
    user = UserFactory(plan_override=PlanKey.FREE)
    subscribe(user, PlanKey.GROWTH, "active")

    assert user_effective_plan(user).plan.key == "free"


def test_a_past_due_subscription_keeps_its_plan_for_seven_days(db):
    user = UserFactory()
    now = timezone.now()
    subscribe(user, PlanKey.PLUS, "past_due", past_due_since=now - timedelta(days=6, hours=23))

    effective = user_effective_plan(user)

    assert (effective.plan.key, effective.source) == ("plus", "subscription")


def test_a_past_due_subscription_falls_back_to_free_after_seven_days(db):
    user = UserFactory()
    now = timezone.now()
    subscribe(user, PlanKey.PLUS, "past_due", past_due_since=now - timedelta(days=7, minutes=1))

    effective = user_effective_plan(user)

    assert (effective.plan.key, effective.source) == ("free", "default")


def test_the_grace_period_ends_exactly_seven_days_after_payment_failed(db):
    user = UserFactory()
    since = timezone.now() - timedelta(days=30)
    subscribe(user, PlanKey.PLUS, "past_due", past_due_since=since)

    just_before = since + timedelta(days=7) - timedelta(seconds=1)
    at_the_end = since + timedelta(days=7)
    assert user_effective_plan(user, now=just_before).plan.key == "plus"
    assert user_effective_plan(user, now=at_the_end).plan.key == "free"


@pytest.mark.parametrize("status", ["canceled", "unpaid", "incomplete", "incomplete_expired"])
def test_a_subscription_not_in_good_standing_gives_free(db, status):
    user = UserFactory()
    subscribe(user, PlanKey.GROWTH, status)

    assert user_effective_plan(user).plan.key == "free"


# --- manage.py plan -------------------------------------------------------------------------------


def run_plan(*args: str) -> str:
    out = StringIO()
    call_command("plan", *args, stdout=out)
    return out.getvalue().strip()


def test_the_plan_command_shows_the_effective_plan_and_where_it_comes_from(frank, alice):
    assert run_plan("frank@example.com") == (
        "frank@example.com: free (from default; override: none)"
    )
    assert run_plan("alice@example.com") == (
        "alice@example.com: plus (from override; override: plus)"
    )


def test_the_plan_command_finds_the_user_whatever_the_case_of_the_email(frank):
    assert run_plan("Frank@Example.COM").startswith("frank@example.com: free")


def test_the_plan_command_sets_the_override(frank):
    output = run_plan("frank@example.com", "plus")

    frank.refresh_from_db()
    assert frank.plan_override == "plus"
    assert user_effective_plan(frank).plan.key == "plus"
    assert output == "frank@example.com: plus (from override; override: plus)"


def test_the_plan_command_auto_clears_the_override(alice):
    subscribe(alice, PlanKey.GROWTH, "active")

    output = run_plan("alice@example.com", "auto")

    alice.refresh_from_db()
    assert alice.plan_override == ""
    assert output == "alice@example.com: growth (from subscription; override: none)"


def test_the_plan_command_refuses_an_unknown_email(frank):
    with pytest.raises(CommandError, match=r"No user with email nobody@example\.com"):
        run_plan("nobody@example.com", "plus")


def test_the_plan_command_refuses_an_unknown_plan_and_changes_nothing(frank):
    with pytest.raises(CommandError, match="invalid choice: 'gold'"):
        run_plan("frank@example.com", "gold")

    frank.refresh_from_db()
    assert frank.plan_override == ""


# --- Admin ----------------------------------------------------------------------------------------


def test_staff_set_a_users_plan_in_the_admin_and_it_becomes_effective(staff_client, frank):
    url = f"/admin/accounts/user/{frank.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    assert "Free (default)" in page.content.decode()

    data = admin_form_data(page)
    data["plan_override"] = "plus"
    response = staff_client.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert response["Location"] == "/admin/accounts/user/"
    frank.refresh_from_db()
    assert frank.plan_override == "plus"
    assert frank.email == "frank@example.com"
    assert frank.check_password("correct horse battery staple")
    assert user_effective_plan(frank).plan.key == "plus"
    assert "Plus (override)" in staff_client.get(url).content.decode()


def test_a_user_who_is_not_staff_cannot_reach_the_user_admin(frank_client, alice):
    response = frank_client.get(f"/admin/accounts/user/{alice.pk}/change/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- Pricing page ---------------------------------------------------------------------------------


def plan_section(body: str, key: str) -> str:
    match = re.search(
        rf'<section[^>]*aria-labelledby="plan-{key}"[^>]*>(.*?)</section>', body, re.DOTALL
    )
    assert match, f"no section for the {key} plan"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(1)))


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            "free",
            [
                "Free",
                "$0",
                "Files per batch 1 ",
                "Max file size 10 MB",
                "Documents per month 50 ",
                "Submissions per hour 3 ",
                "Queue priority Low",
                "Economy lane No",
                "Outgoing webhooks No",
                "API requests per minute 60 ",
            ],
        ),
        (
            "plus",
            [
                "Plus",
                "$29",
                "Files per batch 25 ",
                "Max file size 25 MB",
                "Documents per month 1,000 ",
                "Submissions per hour 10 ",
                "Queue priority Normal",
                "Economy lane No",
                "Outgoing webhooks Yes",
                "API requests per minute 300 ",
            ],
        ),
        (
            "growth",
            [
                "Growth",
                "$99",
                "Files per batch 100 ",
                "Max file size 50 MB",
                "Documents per month 10,000 ",
                "Submissions per hour 30 ",
                "Queue priority High",
                "Economy lane Yes",
                "Outgoing webhooks Yes",
                "API requests per minute 1,200 ",
            ],
        ),
    ],
)
def test_the_pricing_page_lists_each_plan_with_its_limits(client, db, no_overrides, key, expected):
    response = client.get("/pricing/")

    assert response.status_code == 200
    section = plan_section(response.content.decode(), key)
    for text in expected:
        assert text in section


def test_the_pricing_page_shows_overridden_limits(client, db, settings):
    settings.SHEAF_PLAN_LIMITS = {"free": {"documents_per_month": 5}}

    section = plan_section(client.get("/pricing/").content.decode(), "free")

    assert "Documents per month 5 " in section


def test_the_pricing_page_marks_the_signed_in_users_plan(alice_client):
    body = alice_client.get("/pricing/").content.decode()

    assert "Your plan" in plan_section(body, "plus")
    assert "Your plan" not in plan_section(body, "free")
    assert "Your plan" not in plan_section(body, "growth")
