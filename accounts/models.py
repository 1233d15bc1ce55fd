from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import connections, models
from django.utils import timezone

from accounts.plans import PlanKey


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: Any) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A Sheaf account. People log in with their email address; there is no username."""

    email = models.EmailField("email address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    plan_override = models.CharField(
        max_length=16,
        choices=PlanKey.choices,
        blank=True,
        help_text="Set by staff; wins over any subscription. Blank means automatic.",
    )
    notify_batch_email = models.BooleanField(
        "email me when a batch finishes",
        default=True,
        help_text="An email when a batch completes or fails (not when it is canceled).",
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email


class Subscription(models.Model):
    """A user's Stripe subscription as Sheaf last read it from Stripe."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete"
        INCOMPLETE_EXPIRED = "incomplete_expired"
        TRIALING = "trialing"
        ACTIVE = "active"
        PAST_DUE = "past_due"
        CANCELED = "canceled"
        UNPAID = "unpaid"
        PAUSED = "paused"

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="subscription")
    plan = models.CharField(max_length=16, choices=PlanKey.choices)
    status = models.CharField(max_length=24, choices=Status.choices)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    past_due_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_subscription_id"],
                condition=~models.Q(stripe_subscription_id=""),
                name="subscription_stripe_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.plan} ({self.status})"


class MonthlyUsage(models.Model):
    """Documents reserved against a user's monthly quota.

    Reserved with one conditional UPDATE at submission and given back when a document fails
    permanently or is canceled. Deleting a batch gives nothing back: its documents were processed.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="monthly_usage")
    month = models.DateField(help_text="First day of the month, UTC.")
    documents = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "month"], name="monthly_usage_user_month"),
            models.CheckConstraint(
                condition=models.Q(documents__gte=0), name="monthly_usage_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.month:%Y-%m}: {self.documents}"


class Submission(models.Model):
    """One accepted batch submission, for the hourly rate limit. Kept apart from the batch so
    that deleting a batch does not give the submission back."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="submissions")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"], name="submission_user_created")]

    def __str__(self) -> str:
        return f"{self.user} at {self.created_at:%Y-%m-%d %H:%M}"


class StripeEvent(models.Model):
    """Every Stripe webhook event, stored once by its id, with what became of it."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id} ({self.status})"


class ApiKey(models.Model):
    """A key for the REST API. Only its prefix (for lookup) and a hash of the whole key are kept;
    the secret is shown once, when the key is created."""

    NAME_MAX_LENGTH = 100

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=NAME_MAX_LENGTH)
    prefix = models.CharField(max_length=16, unique=True)
    # SHA-256 without salt or stretching is enough here: a key carries 256 random bits, so there
    # is no dictionary to guess from, and a slow hash would make every API request slow.
    hashed_secret = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ApiRequestMinuteManager(models.Manager["ApiRequestMinute"]):
    def count_request(self, *, user_id: int, minute: int) -> int:
        """Count one API request in the user's minute and return its number there.

        One `INSERT … ON CONFLICT DO UPDATE … RETURNING` (SQLite 3.35+, PostgreSQL): the
        database increments and reads in one statement, so concurrent requests, from threads or
        from several web processes, each get a different number and never more pass than the
        plan allows. The ORM has no increment-on-conflict, hence the SQL.
        """
        connection = connections[self.db]
        table = connection.ops.quote_name(self.model._meta.db_table)
        sql = (
            f"INSERT INTO {table} (user_id, minute, requests) VALUES (%s, %s, 1) "  # noqa: S608
            f"ON CONFLICT (user_id, minute) DO UPDATE SET requests = {table}.requests + 1 "
            "RETURNING requests"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [user_id, minute])
            row = cursor.fetchone()
        count = int(row[0])
        if count == 1:
            # A user's new minute starts: their older minutes will never be counted again.
            self.filter(user_id=user_id, minute__lt=minute).delete()
        return count


class ApiRequestMinute(models.Model):
    """A user's REST API requests in one clock minute, for the plan's request rate when the
    cache is the database (with Redis, Redis counts them)."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    minute = models.BigIntegerField(help_text="Minutes since the Unix epoch (UTC).")
    requests = models.PositiveIntegerField(default=0)

    objects = ApiRequestMinuteManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "minute"], name="api_request_minute_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} minute {self.minute}: {self.requests}"
