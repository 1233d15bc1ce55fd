"""Sheaf's admin site: Django's, with Sheaf's name and one "Accounts" section.

allauth's email addresses (app label `account`, also called "Accounts") and Django's groups
(`auth`) would otherwise stand in sections of their own beside Sheaf's users; staff look for
everything about a person in one place.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

ACCOUNTS = "accounts"
# Apps whose models are listed in the Accounts section instead of in sections of their own.
FOLDED_INTO_ACCOUNTS = ("account", "auth")


class SheafAdminSite(admin.AdminSite):
    site_header = "Sheaf administration"
    site_title = "Sheaf administration"
    index_title = "Site administration"
    # The index and the breadcrumbs lead everywhere; the sidebar's 280 pixels are better spent
    # on the changelists' columns (the batch changelist's fit beside its filters at 1280).
    enable_nav_sidebar = False

    def get_app_list(
        self, request: HttpRequest, app_label: str | None = None
    ) -> list[dict[str, Any]]:
        if app_label is not None and app_label not in (ACCOUNTS, *FOLDED_INTO_ACCOUNTS):
            return super().get_app_list(request, app_label)
        apps = super().get_app_list(request)
        accounts = next((app for app in apps if app["app_label"] == ACCOUNTS), None)
        if accounts is None:
            return apps if app_label is None else super().get_app_list(request, app_label)
        for app in apps:
            if app["app_label"] in FOLDED_INTO_ACCOUNTS:
                accounts["models"].extend(app["models"])
        accounts["models"].sort(key=lambda model: model["name"])
        if app_label is not None:
            # The page an email address's or a group's breadcrumbs lead to: the one section.
            return [accounts]
        return [app for app in apps if app["app_label"] not in FOLDED_INTO_ACCOUNTS]


class SheafAdminConfig(AdminConfig):
    default_site = "batchsite.admin_site.SheafAdminSite"
