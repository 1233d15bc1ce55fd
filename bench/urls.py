"""Sheaf's URLs and two bare views that answer `ok`, behind the same authentication as the polled
reads: the floor the poll benchmark holds a 304 against."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET
from rest_framework.request import Request
from rest_framework.views import APIView

from batchsite.urls import urlpatterns as sheaf_urlpatterns


@login_required
@require_GET
def ok(request: HttpRequest) -> HttpResponse:
    """As the progress partial: a session, @login_required."""
    return HttpResponse("ok", content_type="text/plain")


class OkApi(APIView):
    """As GET /api/v1/batches/<id>/: DRF's default authentication (Bearer key first),
    permission and plan rate throttle, which counts the request."""

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/ok/", ok),
    path("bench/api-ok/", OkApi.as_view()),
    *sheaf_urlpatterns,
]
