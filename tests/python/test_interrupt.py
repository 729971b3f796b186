"""Ctrl-C during an encode: it stops within a couple of seconds, exit status 130, one line
"interrupted", no traceback and no temporary file, a second Ctrl-C included; the native
encoder's cancel flag stops in-flight groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from relcode import format as fmt
from relcode.errors import CancelledError


@pytest.fixture(scope="module")
def big_posterior(tmp_path_factory) -> Path:
    n = 1 << 21
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("post") / "p.safetensors"
    save_file(
        {"w.mean": rng.normal(0, 0.1, n).astype(np.float32), "w.std": np.full(n, 0.05, np.float32)},
        str(path),
    )
    return path


def _start(post: Path, out: Path, workers: int = 2) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-m", "relcode", "encode", str(post), "-o", str(out / "m.relc")]
    # 16-bit blocks in 32 groups: a minute of work, so the interrupt always lands mid-encode
    cmd += ["--prior-std", "0.1", "--bits-per-block", "16", "--chunk-size", "65536"]
    cmd += ["--workers", str(workers), "-q"]
    return subprocess.Popen(
        cmd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _wait_for_temp(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 120
    while not any(out.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the encode ended before it could be interrupted"


def _interrupt(post: Path, out: Path, *, delay: float, second: float | None) -> tuple[float, str]:
    out.mkdir()
    proc = _start(post, out)
    try:
        _wait_for_temp(proc, out)
        time.sleep(delay)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        if second is not None:
            time.sleep(second)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == "relcode encode: interrupted", err
    assert list(out.iterdir()) == []
    return elapsed, err


def test_ctrl_c_stops_in_flight_groups_at_once(big_posterior: Path, tmp_path: Path) -> None:
    elapsed, _ = _interrupt(big_posterior, tmp_path / "out", delay=0.5, second=None)
    assert elapsed < 2.5, f"took {elapsed:.1f} s to stop"


def test_second_ctrl_c_is_clean(big_posterior: Path, tmp_path: Path) -> None:
    elapsed, _ = _interrupt(big_posterior, tmp_path / "out", delay=0.5, second=0.02)
    assert elapsed < 2.5


def test_ctrl_c_as_the_temporary_file_appears(big_posterior: Path, tmp_path: Path) -> None:
    # the race that used to leave the temporary file behind: SIGINT just after it is created
    _interrupt(big_posterior, tmp_path / "out", delay=0.0, second=None)


@pytest.mark.slow
@pytest.mark.parametrize("k", range(10))
def test_ctrl_c_race_repeated(big_posterior: Path, tmp_path: Path, k: int) -> None:
    _interrupt(big_posterior, tmp_path / "out", delay=0.002 * k, second=0.01 if k % 2 else None)


def test_cancel_flag_stops_a_group_and_leaves_bytes_alone() -> None:
    rng = np.random.default_rng(1)
    n = 40_000
    qm, qs = rng.normal(0, 0.1, n), np.full(n, 0.05)
    pm, ps = np.zeros(n, np.float32), np.full(n, 0.1, np.float32)
    kw = dict(bits_per_block=16, layout="fixed", block_size=8, threads=1)
    flag = fmt.cancel_flag()
    assert not flag.is_set()
    want = fmt.encode_group_payloads(0, 3, 0, qm[:800], qs[:800], pm[:800], ps[:800], **kw)
    got = fmt.encode_group_payloads(0, 3, 0, qm[:800], qs[:800], pm[:800], ps[:800], cancel=flag, **kw)
    assert got[:2] == want[:2]

    errors: list[BaseException] = []

    def run() -> None:
        try:
            fmt.encode_group_payloads(0, 3, 0, qm, qs, pm, ps, cancel=flag, **kw)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    flag.set()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - t0 < 1.0
    assert len(errors) == 1 and isinstance(errors[0], CancelledError)
    with pytest.raises(CancelledError):  # a set flag cancels later calls too
        fmt.encode_group_payloads(0, 3, 0, qm, qs, pm, ps, cancel=flag, **kw)


def test_ctrl_c_reaches_a_caller_waiting_on_native_work() -> None:
    """What `relcode compress-model` runs per group: Ctrl-C is raised in the caller at once
    and the group's native work is cancelled."""
    rng = np.random.default_rng(2)
    n = 200_000
    qm, qs = rng.normal(0, 0.1, n), np.full(n, 0.05)
    pm, ps = np.zeros(n, np.float32), np.full(n, 0.1, np.float32)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            fmt.encode_group_interruptibly(
                0, 3, 0, qm, qs, pm, ps, bits_per_block=16, layout="fixed", block_size=8, threads=1
            )
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 1.5
    # the helper thread ends soon after (its native work was cancelled)
    deadline = time.monotonic() + 2
    while (
        any(t.name.startswith("relcode-encode") for t in threading.enumerate())
        and time.monotonic() < deadline
    ):
        time.sleep(0.02)
    assert not any(t.name.startswith("relcode-encode") for t in threading.enumerate())


def test_ctrl_c_stops_the_in_memory_encoder(tmp_path: Path) -> None:
    import relcode

    rng = np.random.default_rng(3)
    n = 200_000
    tensors = {"w": (rng.normal(0, 0.1, n), 0.05, 0.0, 0.1)}
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            relcode.encode(
                tmp_path / "m.relc", tensors, seed=0, bits_per_block=16, layout="fixed", block_size=8
            )
    finally:
        timer.cancel()
    assert time.monotonic() - t0 < 1.5
    assert list(tmp_path.iterdir()) == []
