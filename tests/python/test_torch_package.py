"""relcode.torch as a package: docstring examples run, ``import relcode`` stays torch-free,
and (slow) the full demo meets its targets."""

from __future__ import annotations

import doctest
import importlib
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from ..conftest import ROOT  # noqa: E402

MODULES = [
    "relcode.torch",
    "relcode.torch.bayesian",
    "relcode.torch.datasets",
    "relcode.sharing",
    "relcode.torch.lambertw",
    "relcode.torch.models",
    "relcode.torch.training",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


def test_import_relcode_does_not_import_torch() -> None:
    code = "import sys, relcode, relcode.channel, relcode.format; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "python")})  # fmt: skip
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_demo_meets_its_targets() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "relcode", "demo", "--json"], capture_output=True, text=True,
                         env=env, timeout=3600)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    for key in (
        "original_bytes",
        "compressed_bytes",
        "test_error_original",
        "test_error_compressed",
        "baselines",
    ):
        assert key in r
    assert r["original_bytes"] == 4 * 431080
    assert r["compressed_bytes"] <= 2000
    assert r["identical_predictions"]
    assert r["test_error_compressed"] <= r["test_error_original"] + 0.01 + 1e-9
    at_size = [b for b in r["baselines"] if b["pruned_fraction"] > 0]
    assert at_size and all(b["bytes"] >= r["compressed_bytes"] for b in at_size)
    assert all(r["test_error_compressed"] < b["test_error"] for b in at_size)
