"""Request types for views that only signed-in users reach.

Django types `request.user` as `User | AnonymousUser`, which is right for a view anyone may call
and wrong for one behind `@login_required` (or, in the API, the default `IsAuthenticated`): there
the user is always a Sheaf `User`. Annotate such a view's request with these, so the services it
calls get a `User` without a cast at every call. They are annotations only: Django and DRF build
the request objects, and the decorator or permission is what makes the annotation true.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.request import Request

from accounts.models import User


class AuthenticatedHttpRequest(HttpRequest):
    """The request of a `@login_required` view."""

    user: User


class AuthenticatedRequest(Request):
    """The request of an API view under the default `IsAuthenticated` permission."""

    user: User
