"""The effective plan as SQL (staff filters over many rows) agrees with `user_effective_plan`."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import Subscription
from accounts.selectors import effective_plan_expression, user_effective_plan
from batches.models import BatchProcess
from tests.factories import BatchFactory, UserFactory


def test_the_sql_effective_plan_matches_the_python_one_for_every_kind_of_user(db, settings):
    settings.SHEAF_PAST_DUE_GRACE_DAYS = 7
    now = timezone.now()
    users = {
        "override beats subscription": UserFactory(plan_override="growth"),
        "no subscription": UserFactory(),
        "active": UserFactory(),
        "trialing": UserFactory(),
        "past due, in grace": UserFactory(),
        "past due, grace over": UserFactory(),
        "canceled": UserFactory(),
    }
    subscriptions = {
        "override beats subscription": ("plus", "active", None),
        "active": ("growth", "active", None),
        "trialing": ("plus", "trialing", None),
        "past due, in grace": ("plus", "past_due", now - timedelta(days=2)),
        "past due, grace over": ("plus", "past_due", now - timedelta(days=8)),
        "canceled": ("growth", "canceled", None),
    }
    for label, (plan, status, past_due_since) in subscriptions.items():
        Subscription.objects.create(
            user=users[label], plan=plan, status=status, past_due_since=past_due_since
        )
    for user in users.values():
        BatchFactory(user=user)

    in_sql = dict(
        BatchProcess.objects.annotate(
            p=effective_plan_expression(user="user", now=now)
        ).values_list("user_id", "p")
    )

    expected = {
        "override beats subscription": "growth",
        "no subscription": "free",
        "active": "growth",
        "trialing": "plus",
        "past due, in grace": "plus",
        "past due, grace over": "free",
        "canceled": "free",
    }
    for label, user in users.items():
        assert in_sql[user.pk] == user_effective_plan(user, now=now).plan.key == expected[label]
