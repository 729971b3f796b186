"""Shared test configuration: one BLAS/torch thread (two threads run ~10x slower on the
small shared machines CI uses), the shared data directory, and a few helpers."""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec"
SHARED_DATA = ROOT.parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    try:
        import torch
    except ImportError:  # torch is needed by the torch and INR suites only
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def kodak_dir() -> Path:
    path = SHARED_DATA / "kodak"
    if not path.is_dir():
        pytest.skip(f"the Kodak images are not available (expected {path})")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261129)
