"""Fixtures of the benchmark's tests: a fixed result set (``fixed_results``)."""

from __future__ import annotations

import pytest

from perf.report import ConstantRateRow, WorkloadRow
from tests.perf import fixed_results


@pytest.fixture
def workload_rows() -> list[WorkloadRow]:
    """Every server on every workload; the service's cache hits on the GETs."""
    return fixed_results.workload_rows()


@pytest.fixture
def open_loop_rows() -> list[ConstantRateRow]:
    return fixed_results.open_loop_rows()
