"""relcode.distributed.encode on a LocalCluster of two worker processes: the bytes of the
single-process encoder, also when a worker dies in the middle of a task or a task fails and
is retried; a task that keeps failing leaves nothing at the destination."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import relcode

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import relcode.distributed  # noqa: E402

# The fault-injecting tasks below are defined here; workers get them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

CHUNK = 96
KW = {"seed": 11, "chunk_size": CHUNK, "bits_per_block": 8}


@pytest.fixture(scope="module")
def client():
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.fixture(scope="module")
def posterior_file(tmp_path_factory) -> tuple[Path, bytes]:
    """A posterior file spanning 8 groups and its single-process encoding."""
    d = tmp_path_factory.mktemp("post")
    rng = np.random.default_rng(5)
    st = {
        "a.mean": rng.normal(0, 0.1, (20, 20)).astype(np.float32),
        "a.std": rng.uniform(0.02, 0.06, (20, 20)).astype(np.float32),
        "b.mean": rng.normal(0, 0.1, 300).astype(np.float32),
        "b.std": rng.uniform(0.02, 0.06, 300).astype(np.float32),
        "b.prior_std": rng.uniform(0.08, 0.12, 300).astype(np.float32),
        "n": np.arange(4, dtype=np.int64),
    }
    path = d / "post.safetensors"
    save_file(st, str(path))
    with relcode.StreamEncoder(d / "local.relc", progress=False, **KW) as enc:
        enc.add_safetensors(path, prior_std=0.1)
    return path, (d / "local.relc").read_bytes()


@pytest.mark.parametrize("read_on_workers", [True, False])
def test_same_bytes_as_single_process(client, posterior_file, tmp_path: Path, read_on_workers: bool) -> None:
    path, want = posterior_file
    rep = relcode.distributed.encode(
        tmp_path / "d.relc", path, client=client, prior_std=0.1, read_on_workers=read_on_workers, window=3,
        progress=False, **KW,
    )  # fmt: skip
    assert (tmp_path / "d.relc").read_bytes() == want
    assert rep.groups == 8
    assert [p.name for p in tmp_path.iterdir()] == ["d.relc"]


def test_arrays_same_bytes_as_in_memory_encoder(client, tmp_path: Path) -> None:
    import io

    rng = np.random.default_rng(6)
    tensors = {"w": (rng.normal(0, 0.1, 500), 0.04, 0.0, 0.1), "r": np.ones(3, dtype=np.float16)}
    buf = io.BytesIO()
    relcode.encode(buf, tensors, **KW)
    relcode.distributed.encode(tmp_path / "d.relc", tensors, client=client, progress=False, **KW)
    assert (tmp_path / "d.relc").read_bytes() == buf.getvalue()


def crash_once(spec, marker: str):
    """Kills its worker process the first time it runs group 3 (a worker lost mid-task)."""
    from relcode import streaming

    if spec.g == 3 and not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return streaming.encode_chunk(spec)


def fail_once(spec, marker: str):
    """Raises the first time it runs group 2 (a transient task failure)."""
    from relcode import streaming

    if spec.g == 2 and not os.path.exists(marker):
        Path(marker).write_text("failed")
        raise OSError("transient failure")
    return streaming.encode_chunk(spec)


def fail_always(spec):
    raise OSError("this task always fails")


def test_worker_killed_mid_task_gives_same_bytes(client, posterior_file, tmp_path: Path) -> None:
    path, want = posterior_file
    marker = tmp_path / "killed"
    relcode.distributed.encode(
        tmp_path / "d.relc", path, client=client, prior_std=0.1, progress=False,
        _task=functools.partial(crash_once, marker=str(marker)), **KW,
    )  # fmt: skip
    assert marker.exists() and int(marker.read_text()) != os.getpid()  # a worker did die
    assert (tmp_path / "d.relc").read_bytes() == want
    client.wait_for_workers(2, timeout=60)


def test_failed_task_is_retried_with_same_bytes(client, posterior_file, tmp_path: Path) -> None:
    path, want = posterior_file
    marker = tmp_path / "failed"
    relcode.distributed.encode(
        tmp_path / "d.relc", path, client=client, prior_std=0.1, progress=False, retries=1,
        _task=functools.partial(fail_once, marker=str(marker)), **KW,
    )  # fmt: skip
    assert marker.exists()
    assert (tmp_path / "d.relc").read_bytes() == want


def test_failing_task_leaves_nothing(client, posterior_file, tmp_path: Path) -> None:
    path, _ = posterior_file
    with pytest.raises(OSError, match="always fails"):
        relcode.distributed.encode(
            tmp_path / "d.relc", path, client=client, prior_std=0.1, progress=False, retries=1,
            _task=fail_always, **KW,
        )  # fmt: skip
    assert list(tmp_path.iterdir()) == []


def test_command_line_scheduler(client, posterior_file, tmp_path: Path, capsys) -> None:
    from relcode.cli import main

    path, want = posterior_file
    args = ["encode", str(path), "-o", str(tmp_path / "c.relc"), "--prior-std", "0.1", "--seed", "11"]
    args += [
        "--chunk-size",
        str(CHUNK),
        "--bits-per-block",
        "8",
        "--scheduler",
        client.scheduler.address,
        "-q",
    ]
    assert main(args) == 0
    assert (tmp_path / "c.relc").read_bytes() == want
