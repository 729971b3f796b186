"""Release checks (slow): the manylinux2014 wheel builds, is stripped, needs glibc 2.17 at
most, carries its licences, installs into a bare venv (numpy, tqdm and safetensors only) and
works there: the core commands run, optional ones say in one line what to install; the sdist
builds and installs from source; the packaged crate builds and passes its tests on its own."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=1800, **kw)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("ziglang")
    out = tmp_path_factory.mktemp("dist")
    venv_bin = Path(sys.executable).parent
    env = {"PATH": f"{venv_bin}:{shutil.os.environ['PATH']}", "HOME": shutil.os.environ.get("HOME", "/")}
    res = _run(
        venv_bin / "maturin", "build", "--release", "--zig", "--compatibility", "manylinux2014", "--strip",
        "--out", out, cwd=ROOT, env={**shutil.os.environ, **env},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    (whl,) = out.glob("*.whl")
    return whl


@pytest.mark.slow
def test_wheel_is_portable_stripped_and_licensed(wheel: Path) -> None:
    assert "manylinux2014_x86_64" in wheel.name and "abi3" in wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        so = z.read(next(n for n in names if n.endswith(".so")))
        meta = z.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert any(n.endswith("licenses/LICENSE-MIT") for n in names)
    assert any(n.endswith("licenses/LICENSE-APACHE") for n in names)
    assert "relcode/py.typed" in names and "relcode/_native.pyi" in names
    assert any(n.startswith("relcode/inr/codecs/") and n.endswith(".relc") for n in names)
    versions = {
        tuple(map(int, v.split("."))) for v in re.findall(rb"GLIBC_(\d+\.\d+)", so) for v in [v.decode()]
    }
    assert versions and max(versions) <= (2, 17), sorted(versions)
    assert b".symtab" not in so, "the extension is not stripped"
    assert "License-Expression: MIT OR Apache-2.0" in meta
    for key in ("Provides-Extra: all", "Provides-Extra: image", "Project-URL: Source", "Classifier: "):
        assert key in meta, key


@pytest.mark.slow
def test_bare_install_runs_the_core_and_names_missing_extras(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    py, rel = venv / "bin" / "python", venv / "bin" / "relcode"
    res = _run(py, "-m", "pip", "install", "--quiet", wheel)
    if res.returncode != 0:
        pytest.skip(f"pip cannot fetch numpy/tqdm/safetensors here: {res.stderr[-300:]}")
    code = (
        "import numpy as np, relcode; rng = np.random.default_rng(0); "
        "relcode.encode('m.relc', {'w': (rng.normal(0, .1, (8, 9)), .05, 0.0, .2)}, seed=1, bits_per_block=8)"
    )
    assert _run(py, "-c", code, cwd=tmp_path).returncode == 0
    for argv in (
        ["--version"],
        ["inspect", "m.relc"],
        ["verify", "m.relc"],
        ["decode", "m.relc", "-o", "w.npz"],
    ):
        res = _run(rel, *argv, cwd=tmp_path)
        assert res.returncode == 0, (argv, res.stderr)
    w = np.load(tmp_path / "w.npz")["w"]
    assert w.shape == (8, 9) and w.dtype == np.float32
    for argv, extra in (
        (["image", "compress", "x.png", "-o", "x.relc", "--bpp", "1"], "image"),
        (["demo"], "demo"),
        (["decode", "m.relc", "-o", "w.pt"], "torch"),
    ):
        res = _run(rel, *argv, cwd=tmp_path)
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr.strip().endswith(f"pip install 'relcode[{extra}]'"), res.stderr


@pytest.mark.slow
def test_packaged_crate_tests_on_its_own() -> None:
    if shutil.which("cargo") is None:
        pytest.skip("no cargo")
    res = _run("make", "crate-check", cwd=ROOT)
    assert res.returncode == 0, (res.stdout[-2000:], res.stderr[-3000:])
    assert "test result: FAILED" not in res.stdout


def test_release_workflow_builds_every_platform() -> None:
    yaml = pytest.importorskip("yaml")
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    jobs = wf["jobs"]
    assert {"linux", "macos", "windows", "sdist", "publish", "crate"} <= set(jobs)
    build = [
        s for j in ("linux", "macos", "windows") for s in jobs[j]["steps"] if "maturin" in s.get("uses", "")
    ]
    assert all("--strip" in s["with"]["args"] for s in build)
    assert (
        next(s for s in jobs["linux"]["steps"] if "maturin" in s.get("uses", ""))["with"]["manylinux"]
        == "2014"
    )
    assert jobs["publish"]["if"].startswith("startsWith(github.ref, 'refs/tags/v')")
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert any(s.get("run") == ".ci/run" for s in ci["jobs"]["test"]["steps"])


@pytest.mark.slow
def test_sdist_builds_and_installs_from_source(tmp_path: Path) -> None:
    if shutil.which("cargo") is None:
        pytest.skip("no cargo")
    venv_bin = Path(sys.executable).parent
    env = {**shutil.os.environ, "PATH": f"{venv_bin}:{shutil.os.environ['PATH']}"}
    res = _run(venv_bin / "maturin", "sdist", "--out", tmp_path / "dist", cwd=ROOT, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    import tarfile

    with tarfile.open(sdist) as t:
        names = t.getnames()
    assert any(n.endswith("/LICENSE-MIT") for n in names) and any("/spec/vectors/" in n for n in names)
    venv = tmp_path / "venv"
    assert _run(sys.executable, "-m", "venv", venv).returncode == 0
    res = _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", sdist)
    if res.returncode != 0 and "Could not find a version" in res.stderr:
        pytest.skip("pip cannot fetch the build or runtime dependencies here")
    assert res.returncode == 0, res.stderr[-3000:]
    code = "import relcode, numpy as np; relcode.encode('m.relc', {'w': (np.zeros(6), .05, 0.0, .2)}, seed=1)"
    assert _run(venv / "bin" / "python", "-c", code, cwd=tmp_path).returncode == 0
    assert _run(venv / "bin" / "relcode", "verify", "m.relc", cwd=tmp_path).returncode == 0
