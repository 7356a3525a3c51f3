"""Shared pytest fixtures for frontwire's tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from label_studio_server import (
    BIN_ENV,
    LabelStudioServer,
    find_executable,
    reuse_config,
)

#: CI sets this so a missing Label Studio fails the run instead of skipping.
REQUIRE_LS_ENV = "FRONTWIRE_REQUIRE_LABEL_STUDIO"


@pytest.fixture(scope="session")
def label_studio() -> Iterator[LabelStudioServer]:
    """A real Label Studio server on loopback, shared by the whole session.

    Session-scoped because the first start runs ~70 s of migrations. Skips
    when no ``label-studio`` executable is installed (a plain dev checkout),
    unless ``FRONTWIRE_REQUIRE_LABEL_STUDIO=1``, where that is a failure.
    """
    if reuse_config() is None and find_executable() is None:
        reason = f"Label Studio not installed: set {BIN_ENV}, install it into .venv-ls/, or put label-studio on PATH"
        if os.environ.get(REQUIRE_LS_ENV) == "1":
            pytest.fail(f"{REQUIRE_LS_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    with LabelStudioServer() as server:
        yield server
