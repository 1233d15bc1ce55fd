from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.test import Client

from accounts.models import User
from accounts.plans import PlanKey
from tests.factories import UserFactory, hashed_once
from tests.support import corpus
from tests.support.cluster import WebServer
from tests.support.snapshot import Snapshot

REPO = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of the real-world corpus are an extra pass: without the corpus they are skipped,
    all for the same reason, and the rest of the suite runs on the documents it makes."""
    marked = [item for item in items if item.get_closest_marker("corpus")]
    if marked and corpus.corpus() is None:
        for item in marked:
            item.add_marker(pytest.mark.skip(reason=corpus.MISSING))


@pytest.fixture
def requires_ocr() -> None:
    """Skips a test of reading scans where this server has no OCR model (a fresh machine without
    root: `make test` installs it where it can)."""
    from documents.ocr_reader import ocr_available

    if not ocr_available():
        pytest.skip(
            "OCR is not installed: Tesseract's Latin model is missing (`make test` installs "
            "Debian's tesseract-ocr-script-latn as root)"
        )


@pytest.fixture(autouse=True)
def _plain_static_files(settings) -> None:
    """Production serves hashed static files after collectstatic; tests use the source files."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path: Path) -> Iterator[Path]:
    """Every test stores uploads in its own folder, so "no file remains" can be checked."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    yield settings.MEDIA_ROOT


@pytest.fixture
def media_files(_media_root: Path):
    def files() -> list[Path]:
        return sorted(p for p in _media_root.rglob("*") if p.is_file())

    return files


def _persona(email: str, plan: str | None) -> User:
    return UserFactory(email=email, plan_override=plan or "")


@pytest.fixture
def alice(db) -> User:
    """A Plus subscriber (plan set by staff)."""
    return _persona("alice@example.com", PlanKey.PLUS)


@pytest.fixture
def bob(db) -> User:
    """Another Plus user, who must never see Alice's things."""
    return _persona("bob@example.com", PlanKey.PLUS)


@pytest.fixture
def frank(db) -> User:
    """A Free user."""
    return _persona("frank@example.com", None)


@pytest.fixture
def grace(db) -> User:
    """A Growth user."""
    return _persona("grace@example.com", PlanKey.GROWTH)


@pytest.fixture
def staff(db) -> User:
    staff = User.objects.create_superuser("staff@example.com")
    staff.password = hashed_once("correct horse battery staple")  # the hash's half second, once
    staff.save(update_fields=["password"])
    return staff


def _client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def alice_client(alice: User) -> Client:
    return _client_for(alice)


@pytest.fixture
def bob_client(bob: User) -> Client:
    return _client_for(bob)


@pytest.fixture
def frank_client(frank: User) -> Client:
    return _client_for(frank)


@pytest.fixture
def staff_client(staff: User) -> Client:
    return _client_for(staff)


@pytest.fixture
def grace_client(grace: User) -> Client:
    return _client_for(grace)


@pytest.fixture
def asgi_server(tmp_path: Path) -> Iterator[WebServer]:
    """daphne serving batchsite.asgi (HTTP and WebSocket) on a free loopback port, against the
    test database: the server production runs, where the tests' live_server is WSGI."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = WebServer(tmp_path / "web.log", port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """A slow fixture's rows and files, kept for the rest of its test module
    (tests/support/snapshot.py)."""
    return Snapshot(tmp_path_factory.mktemp("snapshot"))
