"""Output files: no user mistake loses data. The output is never one of the inputs, never a
link, FIFO, device or directory, never stdout ('-'); long names work; a replaced file keeps
its mode; the file and its directory are flushed; stale temporary files are cleaned."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import relcode
from relcode import _output, streaming
from relcode.cli import main
from relcode.errors import InputError


@pytest.fixture
def post(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "post.safetensors"
    save_file(
        {
            "w.mean": rng.normal(0, 0.1, 64).astype(np.float32),
            "w.std": np.full(64, 0.05, np.float32),
        },
        str(path),
    )
    return path


def _encode(post: Path, out: Path | str) -> int:
    return main(["encode", str(post), "-o", str(out), "--prior-std", "0.1", "--bits-per-block", "8", "-q"])


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_output_onto_the_input_is_refused(post: Path, tmp_path: Path, capsys) -> None:
    before = post.read_bytes()
    assert _encode(post, post) == 1
    assert "one of the input files" in capsys.readouterr().err
    assert post.read_bytes() == before
    link = tmp_path / "hard.safetensors"
    os.link(post, link)  # the same inode under another name
    assert _encode(post, link) == 1
    assert post.read_bytes() == before and _listing(tmp_path) == ["hard.safetensors", "post.safetensors"]


def test_decode_onto_its_file_or_base_is_refused(post: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.relc"
    assert _encode(post, out) == 0
    raw = out.read_bytes()
    # same inode, whatever the name: a hard link with a decode suffix
    os.link(out, tmp_path / "m.npz")
    assert main(["decode", str(out), "-o", str(tmp_path / "m.npz"), "-q"]) == 1
    assert "one of the input files" in capsys.readouterr().err
    assert out.read_bytes() == raw
    dec = streaming.open_decoder(out)
    with dec, pytest.raises(InputError, match="input"):
        dec.write(tmp_path / "m.npz")


def test_python_writers_refuse_their_inputs(post: Path) -> None:
    before = post.read_bytes()
    enc = streaming.StreamEncoder(post, seed=0, bits_per_block=8)
    enc.add_safetensors(post, prior_std=0.1)
    with pytest.raises(InputError, match="input"):
        enc.close()
    assert post.read_bytes() == before


def test_symlink_fifo_and_device_are_never_replaced(post: Path, tmp_path: Path, capsys) -> None:
    target = tmp_path / "target.relc"
    target.write_bytes(b"keep")
    link = tmp_path / "link.relc"
    link.symlink_to(target)
    assert _encode(post, link) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and target.read_bytes() == b"keep"
    dangling = tmp_path / "dangling.relc"
    dangling.symlink_to(tmp_path / "nowhere")
    assert _encode(post, dangling) == 1
    assert dangling.is_symlink() and not (tmp_path / "nowhere").exists()

    fifo = tmp_path / "fifo.relc"
    os.mkfifo(fifo)
    assert _encode(post, fifo) == 1  # refused without opening it (opening would block)
    assert "not a regular file" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    with pytest.raises(InputError, match="not a regular file"):
        _output.check_destination("/dev/null")
    assert not [p for p in _listing(tmp_path) if p.endswith(_output.SUFFIX)]


def test_dash_is_not_stdout_and_no_file_named_dash(post: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _encode(post, "-") == 1
    err = capsys.readouterr().err
    assert "stdout" in err and "./-" in err
    assert not (tmp_path / "-").exists()
    assert _encode(post, "./-") == 0  # the way to name such a file
    assert (tmp_path / "-").stat().st_size > 0
    with pytest.raises(InputError, match="stdout"):
        relcode.encode("-", {"w": (np.zeros(4), np.full(4, 0.1), 0.0, 0.2)}, seed=0)


def test_directories_are_refused(post: Path, tmp_path: Path, capsys) -> None:
    assert _encode(post, str(tmp_path / "newdir") + "/") == 1
    assert "directory" in capsys.readouterr().err
    assert not (tmp_path / "newdir").exists()
    (tmp_path / "d").mkdir()
    assert _encode(post, tmp_path / "d") == 1
    assert "directory" in capsys.readouterr().err
    assert _listing(tmp_path / "d") == []
    assert _encode(post, tmp_path / "missing" / "m.relc") == 1
    assert "no such directory" in capsys.readouterr().err


def test_long_names_fit(post: Path, tmp_path: Path, capsys) -> None:
    name = "m" * 245 + ".relc"  # 250 bytes: the temporary name is shortened, not this one
    assert _encode(post, tmp_path / name) == 0
    assert (tmp_path / name).stat().st_size > 0
    utf = "é" * 122 + ".relc"  # 249 bytes of UTF-8
    assert _encode(post, tmp_path / utf) == 0
    assert (tmp_path / utf).exists()
    assert _encode(post, tmp_path / ("x" * 256)) == 1  # too long for any file: said at once
    assert "too long" in capsys.readouterr().err
    assert sorted(_listing(tmp_path)) == sorted([name, utf, "post.safetensors"])


def test_replaced_file_keeps_its_mode_new_file_gets_umask(post: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.relc"
    out.write_bytes(b"old")
    out.chmod(0o444)
    assert _encode(post, out) == 0
    assert out.read_bytes()[:4] != b"old"
    assert stat.S_IMODE(out.stat().st_mode) == 0o444
    out.chmod(0o640)
    assert _encode(post, out) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    old = os.umask(0o027)
    try:
        assert _encode(post, tmp_path / "new.relc") == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.relc").stat().st_mode) == 0o640


def test_file_and_directory_are_flushed(tmp_path: Path, monkeypatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _output.write_bytes(tmp_path / "a.bin", b"abc")
    assert synced == ["file", "dir"]
    synced.clear()
    with streaming.StreamEncoder(tmp_path / "s.relc", seed=0, bits_per_block=8) as enc:
        enc.add("w", np.zeros(10), 0.05, prior_std=0.1)
    assert synced == ["file", "dir"]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_temporary_files_are_cleaned(tmp_path: Path) -> None:
    dest = tmp_path / "m.relc"
    _, prefix = _output.temp_prefix(dest)
    pre = os.fsdecode(prefix)
    dead = tmp_path / f"{pre}{_dead_pid()}.0123456789ab{_output.SUFFIX}"
    live = tmp_path / f"{pre}{os.getppid()}.0123456789ab{_output.SUFFIX}"
    fresh_dead = tmp_path / f"{pre}{_dead_pid()}.ba9876543210{_output.SUFFIX}"
    ancient = tmp_path / f"{pre}{os.getppid()}.aaaaaaaaaaaa{_output.SUFFIX}"
    other = tmp_path / f".other.relc.12345678.1.0123456789ab{_output.SUFFIX}"
    for p in (dead, live, fresh_dead, ancient, other):
        p.write_bytes(b"partial")
    old = time.time() - 600
    for p in (dead, live, other):
        os.utime(p, (old, old))
    os.utime(ancient, (old - 2 * 86400, old - 2 * 86400))
    _output.write_bytes(dest, b"new")
    left = set(_listing(tmp_path))
    assert dead.name not in left and ancient.name not in left  # a killed writer's, or untouched for days
    assert {live.name, fresh_dead.name, other.name, "m.relc"} <= left  # maybe still being written


def test_discard_all_removes_open_temporary_files(tmp_path: Path) -> None:
    out = _output.AtomicOutput(tmp_path / "x.bin")
    assert out.path.exists() and out.path.name.endswith(_output.SUFFIX)
    _output.discard_all()
    assert not out.path.exists() and not (tmp_path / "x.bin").exists()


def test_every_command_with_an_output_checks_it(tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.relc"
    src.write_bytes(b"x")
    for cmd in (
        ["image", "decompress", str(src), "-o", str(src)],
        ["audio", "decompress", str(src), "-o", str(src)],
        ["compress-model", str(src), "-o", str(src), "--bits-per-weight", "2"],
        ["decode", str(src), "-o", "-"],
    ):
        assert main(cmd) == 1, cmd
        assert "error" in capsys.readouterr().err
    assert src.read_bytes() == b"x"


def test_inspect_on_an_ascii_stdout(tmp_path: Path, post: Path) -> None:
    out = tmp_path / "m.relc"
    assert _encode(post, out) == 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), PYTHONIOENCODING="ascii")
    r = subprocess.run(
        [sys.executable, "-m", "relcode", "inspect", str(out)], env=env, capture_output=True, check=False
    )
    assert r.returncode == 0, r.stderr
    assert b"Traceback" not in r.stderr and b"digests" in r.stdout
    r.stdout.decode("ascii")
