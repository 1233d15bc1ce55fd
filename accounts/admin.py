from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from accounts.models import MonthlyUsage, Subscription, User
from accounts.selectors import user_effective_plan


class SubscriptionInline(admin.StackedInline):
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
class UserAdmin(BaseUserAdmin):
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
        ("Profile", {"fields": ("full_name",)}),
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
class MonthlyUsageAdmin(admin.ModelAdmin):
    list_display = ("user", "month", "documents")
    list_filter = ("month",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
