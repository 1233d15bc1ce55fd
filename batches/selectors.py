"""Reads of batches and documents; every lookup of a user-owned object is scoped to its owner."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import User
from batches.models import BatchProcess
from documents.models import Document


def batch_list_for_user(*, user: User, status: str | None = None) -> QuerySet[BatchProcess]:
    batches = BatchProcess.objects.filter(user=user).order_by("-created_at", "-id")
    if status:
        batches = batches.filter(status=status)
    return batches


def batch_get_for_user(*, user: User, batch_id: uuid.UUID | str) -> BatchProcess:
    """The user's batch, or Http404 (another user's batch does not exist for them)."""
    try:
        return BatchProcess.objects.get(pk=batch_id, user=user)
    except (BatchProcess.DoesNotExist, ValueError) as exc:
        raise Http404("No such batch.") from exc


def document_get_for_user(*, user: User, document_id: uuid.UUID | str) -> Document:
    try:
        return Document.objects.select_related("batch").get(pk=document_id, user=user)
    except (Document.DoesNotExist, ValueError) as exc:
        raise Http404("No such document.") from exc


def batch_documents(*, batch: BatchProcess) -> QuerySet[Document]:
    return batch.documents.order_by("created_at", "id").defer("text")
