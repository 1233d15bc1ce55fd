"""`manage.py runserver` (and `make run`): daphne's, serving HTTP and the WebSocket on one port
through `batchsite.asgi`.

Channels' documentation puts the "daphne" app first in INSTALLED_APPS for this command, but that
app imports Twisted and installs its reactor when Django sets up (40 MB in each process: every
worker and cluster process too, which never serve). This project's own app ("batchsite", first
in INSTALLED_APPS so that its command wins over staticfiles' and whitenoise's) brings daphne
into the process that runs the server only.
"""

from daphne.management.commands.runserver import Command as DaphneRunserver


class Command(DaphneRunserver):  # type: ignore[misc]  # daphne is untyped
    pass
