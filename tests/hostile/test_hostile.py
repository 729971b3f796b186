"""The hostile-input corpus (files/, written by gen_hostile.py): every file claims far more
than its bytes hold, and every entry point that opens files must refuse it with the recorded
relcode error, quickly and in bounded memory. The files run in a subprocess under a 2 GB
address-space limit, so an allocation the file does not justify shows up as an abort (a
failed test), not as a slow machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import relcode

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
EXPECTED = json.loads((FILES / "expected.json").read_text())
ROOT = HERE.parents[1]
AS_LIMIT = 2_000_000_000

# Runs in the child: every file through every entry point that opens files; one JSON line
# per (file, entry point), printed before the next starts (a crash names its victim).
CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (AS_CAP, AS_CAP))
import relcode
from relcode import format as fmt, streaming
files, max_elements = json.loads(sys.argv[1]), json.loads(sys.argv[2])
kw = {} if max_elements is None else {"max_elements": max_elements}

def stream_verify(p, **kw):
    with streaming.open_decoder(p, **kw) as d:
        d.verify()

entries = {
    "decode": lambda p, **kw: relcode.decode(open(p, "rb").read(), **kw),
    "verify": lambda p, **kw: relcode.verify(p, **kw),
    "inspect": lambda p, **kw: fmt.inspect(p, **kw),
    "stream": stream_verify,
}
for path in files:
    for name, fn in entries.items():
        print(json.dumps({"file": path, "entry": name, "start": True}), flush=True)
        t = time.perf_counter()
        try:
            fn(path, **kw)
            got = None
        except BaseException as e:
            got = [c.__name__ for c in type(e).__mro__]
        print(json.dumps({"file": path, "entry": name, "mro": got, "s": time.perf_counter() - t}), flush=True)
""".replace("AS_CAP", str(AS_LIMIT))


def run_child(names: list[str], max_elements: int | None = None, timeout: float = 120) -> list[dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), OMP_NUM_THREADS="1", RUST_BACKTRACE="0")
    paths = [str(FILES / f"{n}.relc") for n in names]
    p = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(paths), json.dumps(max_elements)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [json.loads(x) for x in p.stdout.splitlines() if x.startswith("{")]
    done = [x for x in lines if "mro" in x]
    if p.returncode != 0:
        last = lines[-1] if lines else {}
        pytest.fail(f"the reader died (exit {p.returncode}) on {last}: {p.stderr[-2000:]}")
    assert len(done) == 4 * len(names)
    return done


def check(results: list[dict], max_seconds: float) -> None:
    for r in results:
        name = Path(r["file"]).stem
        want = EXPECTED[name]["error"]
        assert r["mro"] is not None, f"{name} via {r['entry']}: accepted"
        assert want in r["mro"] and "FormatError" in r["mro"], f"{name} via {r['entry']}: {r['mro'][0]}"
        assert r["s"] < max_seconds, f"{name} via {r['entry']} took {r['s']:.1f} s"


def test_corpus_is_current(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(HERE / "gen_hostile.py"), "--out", str(tmp_path)], check=True,
                   capture_output=True)  # fmt: skip
    for p in sorted(tmp_path.iterdir()):
        assert (FILES / p.name).read_bytes() == p.read_bytes(), f"{p.name} differs: rerun gen_hostile.py"
    assert {p.name for p in FILES.iterdir()} == {p.name for p in tmp_path.iterdir()}


def test_every_hostile_file_is_refused_fast_in_bounded_memory() -> None:
    t0 = time.perf_counter()
    check(run_child(sorted(EXPECTED)), max_seconds=1.0)
    assert time.perf_counter() - t0 < 30


def test_trusted_limit_still_refuses_without_crashing() -> None:
    # With a limit above every claim only the byte-level checks and fallible allocation
    # stand between the file and the allocator: still a relcode error, never an abort.
    # (The coded-element claims are left out: with such a limit they really are decoded.)
    names = [n for n in sorted(EXPECTED) if n != "group_bomb_2p26" and not n.startswith("claim_")]
    results = run_child(names, max_elements=2**40)
    for r in results:
        name = Path(r["file"]).stem
        assert r["mro"] is not None and "FormatError" in r["mro"], (name, r["entry"], r["mro"])
        assert r["s"] < 2.0, (name, r["entry"], r["s"])


@pytest.mark.slow
def test_trusted_group_bomb_decodes_in_bounded_memory() -> None:
    # 2^26 elements really are decoded (about 1.3 GB) and fail the digest, under 2 GB.
    for r in run_child(["group_bomb_2p26"], max_elements=2**31, timeout=300):
        if r["entry"] == "inspect":  # reads the header and layout only: nothing to refuse
            assert r["mro"] is None, r
        else:
            assert r["mro"] is not None and "ChecksumError" in r["mro"], r


def test_max_elements_is_settable() -> None:
    data = (FILES / "group_bomb_2p26.relc").read_bytes()
    with pytest.raises(relcode.LimitError, match="per byte"):
        relcode.format.inspect(data)
    info = relcode.format.inspect(data, max_elements=2**26)
    assert info["tensors"][0]["shape"] == [2**26]
    with pytest.raises(relcode.LimitError, match="max_elements"):
        relcode.format.inspect(data, max_elements=2**26 - 1)
    with pytest.raises(relcode.InputError):
        relcode.decode(data, max_elements=-1)


@pytest.mark.parametrize("command", ["verify", "decode", "inspect"])
def test_cli_refuses_the_group_bomb_under_a_memory_cap(command: str, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.relc"
    bomb.write_bytes((FILES / "group_bomb_2p26.relc").read_bytes())
    extra = ["-o", str(tmp_path / "out.safetensors")] if command == "decode" else []
    code = (
        f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({AS_LIMIT}, {AS_LIMIT})); "
        "from relcode.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", code, command, str(bomb), *extra], capture_output=True,
                       text=True, timeout=60, env=env)  # fmt: skip
    assert p.returncode == 1, p.stderr
    assert "LimitError" in p.stderr or "per byte" in p.stderr, p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bomb.relc"]  # no temporary file left
    # --max-elements sets the limit: a limit below the claim names max_elements
    p = subprocess.run([sys.executable, "-c", code, command, str(bomb), "--max-elements", "1000", *extra],
                       capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert p.returncode == 1 and "max_elements" in p.stderr, p.stderr


def test_a_panic_reaches_python_as_a_relcode_error() -> None:
    from relcode import _native

    for threads in (None, 2):
        with pytest.raises(relcode.RelcodeError, match=r"internal error.*deliberate"):
            _native._panic_for_tests("deliberate", threads)
