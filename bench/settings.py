"""Sheaf's settings with the bench's URLs beside its own (bench/urls.py): the web server of the
poll benchmark runs with DJANGO_SETTINGS_MODULE=bench.settings."""

from batchsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
