from __future__ import annotations

from collections.abc import Iterator

import pytest

from documents import sandbox


@pytest.fixture(scope="module")
def fresh_sandbox() -> Iterator[None]:
    """A module's reads start and end with no sandbox children: counts of children and limits
    that only a fresh child meets do not depend on the modules that ran before."""
    sandbox.shutdown()
    yield
    sandbox.shutdown()
