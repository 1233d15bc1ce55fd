from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from accounts.models import ApiKey
from batchsite.api import StrictCharField


class PlanOutputSerializer(serializers.Serializer[dict[str, Any]]):
    key = serializers.CharField()
    name = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class, so this one does not replace
    # Field.source; the stubs cannot see that (typeddjango/django-stubs#1054 is the forms twin).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=["override", "subscription", "default"]
    )


class LimitsOutputSerializer(serializers.Serializer[dict[str, Any]]):
    key = serializers.CharField()
    name = serializers.CharField()
    price_usd_month = serializers.IntegerField()
    tagline = serializers.CharField()
    batch_upload = serializers.BooleanField()
    files_per_batch = serializers.IntegerField()
    max_file_size = serializers.IntegerField(help_text="Bytes.")
    documents_per_month = serializers.IntegerField()
    submissions_per_hour = serializers.IntegerField()
    api_requests_per_minute = serializers.IntegerField(
        help_text="Requests to /api/v1/ per minute for this user; over it, 429 rate_limited."
    )
    priority = serializers.IntegerField()
    economy_lane = serializers.BooleanField()
    webhooks = serializers.BooleanField()
    default_budget_usd = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        allow_null=True,
        help_text="The budget a batch submitted without one gets; null: none.",
    )


class UsageOutputSerializer(serializers.Serializer[dict[str, Any]]):
    documents_this_month = serializers.IntegerField()
    submissions_last_hour = serializers.IntegerField()


class MeOutputSerializer(serializers.Serializer[dict[str, Any]]):
    email = serializers.EmailField()
    plan = PlanOutputSerializer()
    limits = LimitsOutputSerializer()
    usage = UsageOutputSerializer()


class ApiKeyOutputSerializer(serializers.Serializer[ApiKey]):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The key starts with sk_sheaf_ and these characters.")
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True)
    revoked_at = serializers.DateTimeField(allow_null=True)


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The secret. Shown this once; Sheaf keeps only a hash.")


class ApiKeyCreateInputSerializer(serializers.Serializer[None]):
    # Surrounding whitespace is trimmed, so the schema says "some non-space character".
    name = StrictCharField(max_length=100, validators=[RegexValidator(r"\S")])
