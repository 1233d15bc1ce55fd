"""Reads about users that every surface shares: the effective plan and this month's usage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, Q, QuerySet, Value, When
from django.http import Http404
from django.utils import timezone

from accounts.models import ApiKey, MonthlyUsage, Submission, Subscription, User
from accounts.plans import Plan, PlanKey, get_plan

PAID_STATUSES = {Subscription.Status.ACTIVE, Subscription.Status.TRIALING}


@dataclass(frozen=True)
class EffectivePlan:
    plan: Plan
    source: str  # "override", "subscription" or "default"


def user_effective_plan(user: User, *, now: datetime | None = None) -> EffectivePlan:
    """Staff override, else the plan of a subscription in good standing, else Free."""
    if user.plan_override:
        return EffectivePlan(get_plan(user.plan_override), "override")
    subscription = Subscription.objects.filter(user=user).first()
    if subscription is not None and _subscription_entitles(subscription, now or timezone.now()):
        return EffectivePlan(get_plan(subscription.plan), "subscription")
    return EffectivePlan(get_plan(PlanKey.FREE), "default")


def _subscription_entitles(subscription: Subscription, now: datetime) -> bool:
    if subscription.status in PAID_STATUSES:
        return True
    if subscription.status == Subscription.Status.PAST_DUE and subscription.past_due_since:
        grace = timedelta(days=settings.SHEAF_PAST_DUE_GRACE_DAYS)
        return now < subscription.past_due_since + grace
    return False


def user_get_by_email(*, email: str) -> User | None:
    """The user with this email (case-insensitive), for operator commands; None when none."""
    return User.objects.filter(email__iexact=email.strip()).first()


def effective_plan_expression(*, user: str = "user", now: datetime | None = None) -> Case:
    """`user_effective_plan` as SQL, for filtering and annotating many rows at once; `user` is
    the path from the queried model to its User. Keep the two in step (a test compares them)."""
    now = now or timezone.now()
    subscription = f"{user}__subscription"
    grace_start = now - timedelta(days=settings.SHEAF_PAST_DUE_GRACE_DAYS)
    entitled = Q(**{f"{subscription}__status__in": PAID_STATUSES}) | Q(
        **{
            f"{subscription}__status": Subscription.Status.PAST_DUE,
            f"{subscription}__past_due_since__gt": grace_start,
        }
    )
    return Case(
        When(~Q(**{f"{user}__plan_override": ""}), then=F(f"{user}__plan_override")),
        When(entitled, then=F(f"{subscription}__plan")),
        default=Value(PlanKey.FREE.value),
    )


def month_start(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(UTC).date().replace(day=1)


@dataclass(frozen=True)
class Usage:
    documents_this_month: int
    submissions_last_hour: int


def user_usage(user: User, *, now: datetime | None = None) -> Usage:
    """Documents reserved against this month's quota and batches submitted in the last hour."""
    now = now or timezone.now()
    reserved = (
        MonthlyUsage.objects.filter(user=user, month=month_start(now))
        .values_list("documents", flat=True)
        .first()
    )
    submissions = Submission.objects.filter(
        user=user, created_at__gt=now - timedelta(hours=1)
    ).count()
    return Usage(documents_this_month=reserved or 0, submissions_last_hour=submissions)


def api_key_list_for_user(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_key_get_for_user(*, user: User, key_id: int | str) -> ApiKey:
    """The user's key, or Http404 (another user's key does not exist for them)."""
    try:
        return ApiKey.objects.get(pk=key_id, user=user)
    except (ApiKey.DoesNotExist, ValueError) as exc:
        raise Http404("No such API key.") from exc
