"""The inspect, verify and decode subcommands: output on stdout, messages on stderr, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import relcode
from relcode.cli import main


@pytest.fixture
def model(tmp_path: Path, rng) -> tuple[Path, relcode.format.Report]:
    path = tmp_path / "m.relc"
    rep = relcode.encode(
        path,
        {"w": (rng.normal(0, 0.1, (3, 4)), 0.05, 0.0, 0.1), "n": np.arange(3, dtype=np.int64)},
        seed=2,
        bits_per_block=8,
        metadata={"arch": "tiny"},
    )
    return path, rep


def test_inspect_human_and_json(model, capsys) -> None:
    path, rep = model
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "relcode 1.0" in out and "w" in out and "coded" in out and "raw" in out
    assert main(["inspect", str(path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["blocks"] == rep.blocks and info["metadata"] == {"arch": "tiny"}


def test_verify_exit_codes(model, tmp_path: Path, capsys) -> None:
    path, _ = model
    assert main(["verify", str(path)]) == 0
    assert "OK" in capsys.readouterr().err
    bad = tmp_path / "bad.relc"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    bad.write_bytes(bytes(data))
    assert main(["verify", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "error" in captured.err
    assert main(["verify", str(tmp_path / "missing.relc")]) == 1
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_decode_writes_tensors(model, tmp_path: Path, suffix: str) -> None:
    path, rep = model
    out = tmp_path / f"w{suffix}"
    assert main(["decode", str(path), "-o", str(out), "-q"]) == 0
    if suffix == ".npz":
        loaded = dict(np.load(out))
    else:
        from safetensors.numpy import load_file

        loaded = load_file(out)
    np.testing.assert_array_equal(loaded["w"], rep.decoded["w"])
    np.testing.assert_array_equal(loaded["n"], np.arange(3))


def test_decode_refuses_other_suffixes(model, tmp_path: Path) -> None:
    path, _ = model
    assert main(["decode", str(path), "-o", str(tmp_path / "w.bin")]) == 2
    assert not (tmp_path / "w.bin").exists()
