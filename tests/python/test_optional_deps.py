"""Optional parts without their modules: one line saying what to install, exit status 1, no
traceback; the core (encode, decode, inspect, verify) works with every optional module gone.

The modules are hidden from a subprocess by an import hook, which behaves for relcode as if
they were not installed; the slow wheel test installs the package into a bare venv."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import relcode
from relcode import deps

OPTIONAL = sorted({m for mods in deps.EXTRAS.values() for m in mods} | {"skimage"})

PRELUDE = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Hide())
for m in list(sys.modules):
    if m.partition(".")[0] in BLOCKED:
        del sys.modules[m]
"""


def run_cli(blocked: list[str], *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    code = PRELUDE + "from relcode.cli import main\nsys.exit(main(sys.argv[2:]))\n"
    return subprocess.run(
        [sys.executable, "-c", code, ",".join(blocked), *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def one_line(res: subprocess.CompletedProcess, extra: str) -> str:
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert f"pip install 'relcode[{extra}]'" in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def relc(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("deps") / "m.relc"
    rng = np.random.default_rng(0)
    relcode.encode(p, {"w": (rng.normal(0, 0.1, (8, 9)), 0.05, 0.0, 0.2)}, seed=1, bits_per_block=8)
    return p


def test_core_commands_need_no_optional_module(relc: Path, tmp_path: Path) -> None:
    for argv in (
        ["inspect", str(relc)],
        ["verify", str(relc)],
        ["decode", str(relc), "-o", str(tmp_path / "w.npz")],
        ["decode", str(relc), "-o", str(tmp_path / "w.safetensors")],
    ):
        res = run_cli(OPTIONAL, *argv, cwd=tmp_path)
        assert res.returncode == 0, (argv, res.stderr)
    code = PRELUDE + "import relcode, relcode.pretrained, relcode.inr\nprint('ok')\n"
    res = subprocess.run([sys.executable, "-c", code, ",".join(OPTIONAL)], capture_output=True, text=True)
    assert res.stdout.strip() == "ok", res.stderr


@pytest.mark.parametrize(
    ("blocked", "argv", "extra", "names"),
    [
        (["torch"], ["image", "compress", "x.png", "-o", "x.relc", "--bpp", "1"], "image", "torch"),
        (["PIL"], ["image", "decompress", "x.relc", "-o", "x.png"], "image", "Pillow"),
        (["threadpoolctl"], ["image", "train-prior", "x.png", "-o", "c.relc", "--bpp", "1"], "image", ""),
        (["torch"], ["audio", "compress", "x.wav", "-o", "x.relc", "--kbps", "8"], "audio", "torch"),
        (["sklearn"], ["demo"], "demo", "scikit-learn"),
        (["torch", "sklearn"], ["demo"], "demo", "torch, scikit-learn"),
        (["scipy"], ["bench", "stream"], "bench", "scipy"),
        (["distributed"], ["encode", "p.safetensors", "-o", "x.relc", "--scheduler", "tcp://h:1"],
         "distributed", "dask[distributed]"),
        (["transformers"], ["compress-model", "m.safetensors", "-o", "x.relc", "--bits-per-weight", "4",
                            "--calibration", "c.txt"], "pretrained", "transformers"),
    ],
)  # fmt: skip
def test_missing_module_is_one_line(tmp_path: Path, blocked, argv, extra, names) -> None:
    line = one_line(run_cli(blocked, *argv, cwd=tmp_path), extra)
    assert line.startswith(f"relcode {argv[0]}")
    assert f"needs {names}" in line


def test_pt_output_needs_torch(relc: Path, tmp_path: Path) -> None:
    line = one_line(
        run_cli(["torch"], "decode", str(relc), "-o", str(tmp_path / "w.pt"), cwd=tmp_path), "torch"
    )
    assert "writing .pt files needs torch" in line
    assert not (tmp_path / "w.pt").exists()


def test_library_import_names_the_extra() -> None:
    code = PRELUDE + (
        "try:\n    import relcode.torch\nexcept ImportError as e:\n"
        "    import relcode\n    print(type(e).__name__, isinstance(e, relcode.RelcodeError), e)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, "torch"], capture_output=True, text=True)
    assert res.stdout.strip() == (
        "MissingDependencyError True relcode.torch needs torch: pip install 'relcode[torch]'"
    ), res.stderr


def _norm(req: str) -> str:
    return re.split(r"[<>=!~; ]", req, maxsplit=1)[0].lower()


def test_extras_table_matches_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")
    root = Path(__file__).resolve().parents[2]
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, mods in deps.EXTRAS.items():
        want = {deps.PACKAGES.get(m, m).lower() for m in mods}
        assert {_norm(r) for r in extras[name]} == want, name
    (all_req,) = extras["all"]
    assert set(all_req.partition("[")[2].rstrip("]").split(",")) == set(deps.EXTRAS)
