from __future__ import annotations

import factory
from django.conf import settings
from django.contrib.auth.hashers import make_password

from accounts.models import User
from accounts.plans import PlanKey, get_plan
from batches.models import BatchProcess
from batches.runs import run_first
from documents.models import Document

_hashes: dict[tuple[str, tuple[str, ...]], str] = {}


def hashed_once(password: str) -> str:
    """The password hashed by the first of PASSWORD_HASHERS, once per password and hashers for
    the whole run: the shipped hasher takes half a second a hash, and hundreds of tests make
    users. The stored value is a real hash, so signing in still checks it with that hasher;
    only its salt is shared between the run's users."""
    key = (password, tuple(settings.PASSWORD_HASHERS))
    if key not in _hashes:
        _hashes[key] = make_password(password)
    return _hashes[key]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.django.Password("correct horse battery staple", transform=hashed_once)


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BatchProcess
        skip_postgeneration_save = True

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"Batch {n}")
    extraction_prompt = "invoice number, date, total"
    fields = factory.LazyFunction(
        lambda: [
            {"name": "invoice number", "type": "string", "description": ""},
            {"name": "date", "type": "date", "description": ""},
            {"name": "total", "type": "number", "description": ""},
        ]
    )
    plan = PlanKey.PLUS
    priority = factory.LazyAttribute(lambda b: get_plan(b.plan).priority)
    engine = "local"

    @factory.post_generation
    def run(batch: BatchProcess, create: bool, extracted: object, **kwargs: object) -> None:
        """Run 1, as every uploaded batch has."""
        if create:
            run_first(batch=batch)


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Document

    batch = factory.SubFactory(BatchFactory)
    user = factory.SelfAttribute("batch.user")
    run = factory.SelfAttribute("batch.current_run")
    original_filename = factory.Sequence(lambda n: f"invoice-{n}.pdf")
    size = 1024
    sha256 = "0" * 64
    content_type = "application/pdf"
