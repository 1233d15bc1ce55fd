"""The upload page's draft endpoints (`static/js/upload.js`): one file per request, answered in
JSON, so each chosen file is checked and kept on its own (`batches.drafts`)."""

from __future__ import annotations

import uuid

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods, require_POST

from accounts.http import AuthenticatedHttpRequest
from batches import drafts
from batchsite.errors import Rejected


def _refused(rejection: Rejected) -> JsonResponse:
    problem = rejection.problems[0]
    return JsonResponse(
        {"code": problem.code, "detail": problem.message}, status=rejection.http_status
    )


@login_required
@require_POST
def draft_file_add(request: AuthenticatedHttpRequest) -> JsonResponse:
    """POST `file` (one) and `draft` (the draft's id; none starts one): 201 with the draft's
    id and the file as kept, or the file's problem as {"code", "detail"}."""
    file = request.FILES.get("file")
    if file is None:
        return JsonResponse({"code": "no_files", "detail": "Send one file as `file`."}, status=400)
    try:
        draft_id = uuid.UUID(request.POST["draft"]) if request.POST.get("draft") else None
        kept = drafts.draft_file_add(user=request.user, draft_id=draft_id, file=file)
    except ValueError:
        return _refused(Rejected.one("not_found", drafts.DRAFT_GONE))
    except Rejected as rejection:
        return _refused(rejection)
    return JsonResponse(
        {
            "draft": str(kept.draft_id),
            "file": {"id": kept.pk, "filename": kept.original_filename, "size": kept.size},
        },
        status=201,
    )


@login_required
@require_http_methods(["DELETE"])
def draft_file_remove(request: AuthenticatedHttpRequest, file_id: int) -> HttpResponse:
    try:
        drafts.draft_file_remove(user=request.user, file_id=file_id)
    except Rejected as rejection:
        return _refused(rejection)
    return HttpResponse(status=204)
