from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.plans import PlanKey
from accounts.selectors import user_effective_plan, user_get_by_email
from accounts.services import user_set_plan_override


class Command(BaseCommand):
    help = "Show a user's effective plan, or set the staff override (auto clears it)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("plan", nargs="?", choices=[*PlanKey.values, "auto"])

    def handle(self, *args: Any, email: str, plan: str | None, **options: Any) -> None:
        user = user_get_by_email(email=email)
        if user is None:
            raise CommandError(f"No user with email {email}")
        if plan is not None:
            user_set_plan_override(user=user, plan_key=None if plan == "auto" else plan)
        effective = user_effective_plan(user)
        override = user.plan_override or "none"
        self.stdout.write(
            f"{user.email}: {effective.plan.key} (from {effective.source}; override: {override})"
        )
