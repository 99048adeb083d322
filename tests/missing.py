"""What a test does when a data set or a service it needs is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def missing(reason: str) -> None:
    """Skip on a laptop; under CI=true fail, so that a green CI run has run every test."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI requires it", pytrace=False)
    pytest.skip(reason)


def require_file(path: Path) -> None:
    if not path.exists():
        missing(f"{path} not present")
