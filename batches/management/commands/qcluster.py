"""`manage.py qcluster`: django-q2's command, starting Sheaf's cluster (`batches.cluster`), which
this process guards itself and which stops within seconds of SIGINT or SIGTERM.

It takes the place of django-q2's command of the same name (Sheaf's apps come before `django_q`
in INSTALLED_APPS), as staticfiles' `runserver` takes the place of Django's.
"""

from __future__ import annotations

import os
from typing import Any

from django_q.management.commands.qcluster import Command as QclusterCommand

from batches.cluster import Cluster
from batchsite.metrics import metrics_files_sweep


class Command(QclusterCommand):  # type: ignore[misc]  # django-q2 is untyped
    help = (
        "Starts the django-q2 cluster. SIGINT or SIGTERM to this process stops it: drains take "
        "no more work and leave what is still in flight after SHEAF_STOP_GRACE_SECONDS."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("cluster_name"):
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        # The counts of processes that ended before this start leave /metrics (a reset).
        metrics_files_sweep()
        cluster = Cluster()
        if options.get("run_once"):
            cluster.stop()  # asked before it starts: one round of the guard, then the stop
        cluster.start()
