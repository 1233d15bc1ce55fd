"""`manage.py` run by hand, as a newcomer does: a setting the environment lacks is one sentence on
stderr that names what to set, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNSET = ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "DJANGO_SETTINGS_MODULE")


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    clean.update(SHEAF_VAR_DIR=str(tmp_path), PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prom"))
    return subprocess.run(  # noqa: S603 - this interpreter and the repository's manage.py
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args", [("plan", "you@example.com", "plus"), ("plan", "--help"), ("createsuperuser",)]
)
def test_without_debug_or_a_secret_key_it_says_what_to_set_in_one_line(tmp_path, args):
    done = manage(tmp_path, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        "manage.py: SECRET_KEY is required when DEBUG is off: set DEBUG=1 on your own machine "
        "(as `make run` does), or SECRET_KEY and ALLOWED_HOSTS in production"
    ]


def test_a_malformed_setting_is_one_line_too(tmp_path):
    done = manage(tmp_path, "plan", "--help", DEBUG="maybe")

    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "manage.py: DEBUG must be a boolean (1/0, true/false), not 'maybe'"
    ]


def test_with_debug_on_the_command_runs(tmp_path):
    done = manage(tmp_path, "plan", "--help", DEBUG="1")

    assert done.returncode == 0, done.stderr
    assert "usage: manage.py plan" in done.stdout
