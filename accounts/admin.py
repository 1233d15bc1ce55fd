from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.billing.services import event_process
from accounts.models import MonthlyUsage, StripeEvent, Subscription, User
from accounts.selectors import user_effective_plan
from batchsite.json_tables import json_table


class SubscriptionInline(admin.StackedInline[Subscription, User]):
    model = Subscription
    extra = 0
    can_delete = False
    readonly_fields = (
        "plan",
        "status",
        "stripe_customer_id",
        "stripe_subscription_id",
        "current_period_end",
        "past_due_since",
        "updated_at",
    )


@admin.register(User)
class UserAdmin(BaseUserAdmin[User]):
    ordering = ("email",)
    list_display = (
        "email",
        "full_name",
        "effective_plan",
        "plan_override",
        "is_staff",
        "date_joined",
    )
    list_filter = ("plan_override", "is_staff", "is_active", "subscription__status")
    search_fields = ("email", "full_name")
    readonly_fields = ("date_joined", "last_login", "effective_plan")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("full_name", "notify_batch_email")}),
        ("Plan", {"fields": ("plan_override", "effective_plan")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    inlines = [SubscriptionInline]

    @admin.display(description="effective plan")
    def effective_plan(self, user: User) -> str:
        effective = user_effective_plan(user)
        return f"{effective.plan.name} ({effective.source})"


@admin.register(MonthlyUsage)
class MonthlyUsageAdmin(admin.ModelAdmin[MonthlyUsage]):
    list_display = ("user", "month", "documents")
    list_filter = ("month",)
    search_fields = ("user__email",)
    list_select_related = ("user",)


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin[StripeEvent]):
    list_display = ("event_id", "type", "status", "received_at", "processed_at")
    list_filter = ("status", "type")
    search_fields = ("event_id",)
    fields = readonly_fields = (
        "event_id",
        "type",
        "status",
        "error",
        "payload_table",
        "received_at",
        "processed_at",
    )
    actions = ["process_again"]

    @admin.display(description="payload")
    def payload_table(self, event: StripeEvent) -> str:
        return json_table(event.payload)

    @admin.action(description="Process again (re-reads the subscription from Stripe)")
    def process_again(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        for event in queryset.exclude(status=StripeEvent.Status.IGNORED):
            StripeEvent.objects.filter(pk=event.pk).update(status=StripeEvent.Status.RECEIVED)
            event_process(event_pk=event.pk)
