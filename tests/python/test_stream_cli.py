"""relcode encode / decode / verify on posterior files: the bytes of the Python API, exit
codes, stdout for data and stderr for messages, and no output left behind by an error or by
Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import relcode
from relcode.cli import build_parser, main


@pytest.fixture
def post(tmp_path: Path, rng) -> tuple[Path, dict]:
    st = {
        "w.mean": rng.normal(0, 0.1, (16, 8)).astype(np.float32),
        "w.std": rng.uniform(0.02, 0.06, (16, 8)).astype(np.float32),
        "w.prior_std": np.array(0.1, dtype=np.float32),
        "b.mean": rng.normal(0, 0.1, 8).astype(np.float32),
        "b.std": rng.uniform(0.02, 0.06, 8).astype(np.float32),
        "steps": np.array([3], dtype=np.int64),
    }
    path = tmp_path / "post.safetensors"
    save_file(st, str(path))
    tensors = {
        "w": (st["w.mean"], st["w.std"], 0.0, 0.1),
        "b": (st["b.mean"], st["b.std"], 0.0, 0.2),
        "steps": st["steps"],
    }
    return path, tensors


def test_encode_matches_python_api_and_round_trips(post, tmp_path: Path, capsys) -> None:
    path, tensors = post
    out = tmp_path / "m.relc"
    args = ["encode", str(path), "-o", str(out), "--seed", "4", "--bits-per-block", "9", "--chunk-size", "50"]
    assert main([*args, "--prior-std", "0.2", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert "wrote" in captured.err
    buf = io.BytesIO()
    ref = relcode.encode(buf, tensors, seed=4, bits_per_block=9, chunk_size=50)
    assert out.read_bytes() == buf.getvalue()
    assert report["file_sha256"] == ref.file_sha256 and report["bits"] == ref.bits

    assert main(["verify", str(out)]) == 0
    assert "OK" in capsys.readouterr().err
    st = tmp_path / "w.safetensors"
    assert main(["decode", str(out), "-o", str(st), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    loaded, want = load_file(st), relcode.decode(out)
    assert sorted(loaded) == sorted(want)
    assert all(loaded[n].tobytes() == want[n].tobytes() for n in want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.relc", "post.safetensors", "w.safetensors"]


def test_encode_options(post, tmp_path: Path, capsys) -> None:
    path, tensors = post
    out = tmp_path / "m.relc"
    common = ["--prior-std", "0.2", "-q", "--method", "mrc", "--bits-per-block", "6"]
    assert (
        main(["encode", str(path), "-o", str(out), *common, "--option", "pool=true", "--digest", "all"]) == 0
    )
    assert capsys.readouterr() == ("", "")
    buf = io.BytesIO()
    relcode.encode(buf, tensors, seed=0, method="mrc", bits_per_block=6, pool=True, digest="all")
    assert out.read_bytes() == buf.getvalue()
    assert main(["encode", str(path), "-o", str(out), "--option", "pool"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main(["encode", str(path), "-o", str(out), "--prior-std", "0.2", "--method", "nope", "-q"]) == 1


def test_encode_bad_posterior_exits_1_without_output(tmp_path: Path, capsys) -> None:
    src = tmp_path / "bad.safetensors"
    save_file({"w.mean": np.zeros(3, np.float32)}, str(src))
    out = tmp_path / "out" / "m.relc"
    out.parent.mkdir()
    assert main(["encode", str(src), "-o", str(out), "--prior-std", "0.1"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "'w.mean' has no 'w.std'" in captured.err
    assert list(out.parent.iterdir()) == []
    assert main(["encode", str(tmp_path / "missing.safetensors"), "-o", str(out)]) == 1
    assert list(out.parent.iterdir()) == []


def test_help_documents_exit_codes() -> None:
    text = build_parser().format_help()
    assert "130" in text and "exit status" in text
    for cmd in ("encode", "decode", "verify"):
        assert cmd in text


def test_ctrl_c_leaves_no_partial_file(tmp_path: Path, rng) -> None:
    """A real SIGINT to `relcode encode` while it writes: exit 130, nothing left behind."""
    n = 1 << 21
    save_file(
        {"w.mean": rng.normal(0, 0.1, n).astype(np.float32), "w.std": np.full(n, 0.05, np.float32)},
        str(tmp_path / "p.safetensors"),
    )
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [
        sys.executable,
        "-m",
        "relcode",
        "encode",
        str(tmp_path / "p.safetensors"),
        "-o",
        str(out / "m.relc"),
    ]
    # 16-bit blocks: many seconds of work, so the interrupt always lands mid-encode
    cmd += ["--prior-std", "0.1", "--bits-per-block", "16", "--chunk-size", "65536", "--workers", "1", "-q"]
    # the child must get SIGINT's default disposition whatever the test process inherited or
    # set (an ignored SIGINT would be inherited through exec and the encode would run to the end)
    proc = subprocess.Popen(
        cmd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not any(out.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, "the encode ended before it could be interrupted"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (err, signal.getsignal(signal.SIGINT))
    assert "interrupted" in err
    assert list(out.iterdir()) == []
