"""The plans Sheaf sells, as data. Every surface reads limits from here through the limits service.

`SHEAF_PLAN_LIMITS` (JSON) overrides any number, e.g. ``{"free": {"documents_per_month": 5}}``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

MB = 1024 * 1024


class PlanKey(models.TextChoices):
    FREE = "free", "Free"
    PLUS = "plus", "Plus"
    GROWTH = "growth", "Growth"


class Priority(IntEnum):
    """Queue priority: workers claim higher values first."""

    LOW = 0
    NORMAL = 5
    HIGH = 10


@dataclass(frozen=True)
class Plan:
    key: str
    name: str
    price_usd_month: int
    tagline: str
    batch_upload: bool
    files_per_batch: int
    max_file_size: int
    documents_per_month: int
    submissions_per_hour: int
    api_requests_per_minute: int
    priority: int
    economy_lane: bool
    webhooks: bool
    # A batch submitted without a budget gets this one (dollars); None: no budget.
    default_budget_usd: Decimal | None = None

    @property
    def max_file_size_mb(self) -> int:
        return self.max_file_size // MB


_DEFAULTS: dict[str, Plan] = {
    PlanKey.FREE: Plan(
        key=PlanKey.FREE,
        name="Free",
        price_usd_month=0,
        tagline="Try Sheaf on one document at a time.",
        batch_upload=False,
        files_per_batch=1,
        max_file_size=10 * MB,
        documents_per_month=50,
        submissions_per_hour=3,
        api_requests_per_minute=60,
        priority=Priority.LOW,
        economy_lane=False,
        webhooks=False,
    ),
    PlanKey.PLUS: Plan(
        key=PlanKey.PLUS,
        name="Plus",
        price_usd_month=29,
        tagline="Batches of up to 25 documents, webhooks, normal priority.",
        batch_upload=True,
        files_per_batch=25,
        max_file_size=25 * MB,
        documents_per_month=1_000,
        submissions_per_hour=10,
        api_requests_per_minute=300,
        priority=Priority.NORMAL,
        economy_lane=False,
        webhooks=True,
    ),
    PlanKey.GROWTH: Plan(
        key=PlanKey.GROWTH,
        name="Growth",
        price_usd_month=99,
        tagline="Batches of up to 100 documents, the economy lane, high priority.",
        batch_upload=True,
        files_per_batch=100,
        max_file_size=50 * MB,
        documents_per_month=10_000,
        submissions_per_hour=30,
        api_requests_per_minute=1_200,
        priority=Priority.HIGH,
        economy_lane=True,
        webhooks=True,
    ),
}

_OVERRIDABLE = {
    field.name: field.type
    for field in dataclasses.fields(Plan)
    if field.name not in {"key", "name", "tagline"}
}


def _apply_overrides(plan: Plan, overrides: object) -> Plan:
    if not isinstance(overrides, dict):
        raise ImproperlyConfigured(f"SHEAF_PLAN_LIMITS[{str(plan.key)!r}] must be a JSON object")
    changes: dict[str, Any] = {}  # each value checked against its field's type below
    for name, value in overrides.items():
        if name not in _OVERRIDABLE:
            allowed = ", ".join(sorted(_OVERRIDABLE))
            raise ImproperlyConfigured(
                f"SHEAF_PLAN_LIMITS[{str(plan.key)!r}] has unknown limit {name!r}; known: {allowed}"
            )
        if name == "default_budget_usd":
            changes[name] = _budget(plan, value)
            continue
        expected = bool if _OVERRIDABLE[name] == "bool" else int
        if type(value) is not expected:
            raise ImproperlyConfigured(
                f"SHEAF_PLAN_LIMITS[{str(plan.key)!r}][{name!r}] must be {expected.__name__}"
            )
        changes[name] = value
    return dataclasses.replace(plan, **changes)


def _budget(plan: Plan, value: object) -> Decimal | None:
    """A default budget from SHEAF_PLAN_LIMITS: a positive number of dollars, or null."""
    if value is None:
        return None
    try:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise InvalidOperation
        budget = Decimal(str(value))
    except InvalidOperation:
        budget = Decimal(0)
    if not budget.is_finite() or budget <= 0:
        raise ImproperlyConfigured(
            f"SHEAF_PLAN_LIMITS[{str(plan.key)!r}]['default_budget_usd'] must be a positive "
            "number of dollars, or null"
        )
    return budget.quantize(Decimal("0.01"))


def all_plans() -> list[Plan]:
    """The plans in price order, with `SHEAF_PLAN_LIMITS` applied."""
    overrides = settings.SHEAF_PLAN_LIMITS
    unknown = set(overrides) - set(_DEFAULTS)
    if unknown:
        raise ImproperlyConfigured(f"SHEAF_PLAN_LIMITS names unknown plans: {sorted(unknown)}")
    return [_apply_overrides(plan, overrides.get(key, {})) for key, plan in _DEFAULTS.items()]


def get_plan(key: str) -> Plan:
    for plan in all_plans():
        if plan.key == key:
            return plan
    raise KeyError(key)


def largest_file_size() -> int:
    return max(plan.max_file_size for plan in all_plans())
