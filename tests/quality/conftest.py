"""The quality tests audit Spark batches too (see tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import SPARK_AUDIT


@pytest.fixture(autouse=True)
def _spark_batches_are_audited() -> Iterator[None]:
    SPARK_AUDIT["on"] = True
    yield
    SPARK_AUDIT["on"] = False
