"""Rate control that is never silent: every encoder reports, per coded tensor, its KL, the
message bits it got, the blocks over their fixed budget and the worst excess (computed by
the native encoder), ``max_excess`` refuses over-budget blocks before any is coded and
writes nothing, and ``relcode encode`` warns about them even with ``-q``."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

import relcode
import relcode.format as F
from relcode.cli import main

PRIOR = 0.1
BITS = 10
OUTLIER = 1.5  # posterior mean 15 prior stds out: about 163 bits of KL in one element
OUTLIER_AT = (3, 4)  # element 34 of w
RATE_KEYS = {"kl_bits", "message_bits", "blocks", "over_budget_blocks", "worst_excess_bits"}


def kl_bits(qm: float, qs: float, pm: float = 0.0, ps: float = PRIOR) -> float:
    ps = float(np.float32(ps))
    return (math.log(ps / qs) + (qs * qs + (qm - pm) ** 2) / (2 * ps * ps) - 0.5) / math.log(2)


def posterior(outlier: float | None = OUTLIER) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(7)
    w = rng.normal(0, 0.02, (20, 10))
    if outlier is not None:
        w[OUTLIER_AT] = outlier
    return {"w": (w, np.full(w.shape, 0.05)), "b": (rng.normal(0, 0.02, 7), np.full(7, 0.05))}


def tensors(outlier: float | None = OUTLIER) -> dict:
    t: dict = {n: (m, s, 0.0, PRIOR) for n, (m, s) in posterior(outlier).items()}
    t["step"] = np.array([3], dtype=np.int64)
    return t


KW = {"seed": 1, "method": "mrc", "bits_per_block": BITS}


# ---------------------------------------------------------------------------------------
# relcode.encode


def test_encode_reports_the_over_budget_block_and_its_excess() -> None:
    rep = relcode.encode(io.BytesIO(), tensors(), **KW)
    assert set(rep.rate) == {"w", "b"}  # coded tensors only
    assert all(set(r) == RATE_KEYS for r in rep.rate.values())
    w, b = rep.rate["w"], rep.rate["b"]
    # KL-greedy packing leaves the outlier alone in its block: over the 10-bit budget by
    # its KL less 10 bits; every other block fits its budget
    assert w["over_budget_blocks"] == 1
    assert w["worst_excess_bits"] == pytest.approx(kl_bits(OUTLIER, 0.05) - BITS, abs=1e-6)
    assert b["over_budget_blocks"] == 0 and b["worst_excess_bits"] <= 0
    assert rep.over_budget.keys() == {"w"}
    # the table is consistent with the rest of the report
    assert {n: r["kl_bits"] for n, r in rep.rate.items()} == rep.kl
    assert sum(r["message_bits"] for r in rep.rate.values()) == pytest.approx(rep.bits)
    assert w["blocks"] + b["blocks"] >= rep.blocks
    # why it matters: the outlier came back far from its posterior (1.5 ± 0.05)
    assert abs(rep.decoded["w"][OUTLIER_AT] - OUTLIER) > 10 * 0.05


def test_encode_without_outlier_has_no_over_budget_block() -> None:
    rep = relcode.encode(io.BytesIO(), tensors(outlier=None), **KW)
    assert rep.over_budget == {}
    assert all(r["worst_excess_bits"] <= 0 for r in rep.rate.values())


def test_exact_methods_report_the_excess_but_have_no_budget() -> None:
    # pfr without bits: messages as long as their samples need; an outlier it can reach
    t = tensors(outlier=0.3)
    rep = relcode.encode(io.BytesIO(), t, seed=1, method="pfr", bits_per_block=BITS, bits=None, max_excess=0)
    assert all(r["over_budget_blocks"] == 0 for r in rep.rate.values())
    assert all(isinstance(r["worst_excess_bits"], float) for r in rep.rate.values())
    assert sum(r["message_bits"] for r in rep.rate.values()) == pytest.approx(rep.bits)


def test_strict_encode_refuses_and_writes_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "m.relc"
    with pytest.raises(relcode.InputError) as e:
        relcode.encode(dest, tensors(), max_excess=0.0, **KW)
    msg = str(e.value)
    for part in ('tensor "w"', "element 34", f"{BITS}-bit mrc budget", f"KL {kl_bits(OUTLIER, 0.05):.1f}"):
        assert part in msg, msg
    assert list(tmp_path.iterdir()) == []
    # a tolerance above the excess lets it through, with the bytes of no check at all
    loose, plain = io.BytesIO(), io.BytesIO()
    relcode.encode(loose, tensors(), max_excess=200.0, **KW)
    relcode.encode(plain, tensors(), **KW)
    assert loose.getvalue() == plain.getvalue()
    relcode.encode(dest, tensors(outlier=None), max_excess=0.0, **KW)
    assert dest.exists()


@pytest.mark.parametrize("bad", [float("nan"), True, "1", [0]])
def test_max_excess_must_be_a_number(bad) -> None:
    with pytest.raises(relcode.InputError, match="max_excess"):
        relcode.encode(io.BytesIO(), tensors(), max_excess=bad, **KW)


# ---------------------------------------------------------------------------------------
# StreamEncoder, the per-group entry and the Dask path


def stream(dest: Path, chunk_size: int = 64, outlier: float | None = OUTLIER, **kw) -> relcode.format.Report:
    with relcode.StreamEncoder(dest, chunk_size=chunk_size, progress=False, **{**KW, **kw}) as enc:
        for n, (m, s) in posterior(outlier).items():
            enc.add(n, m, s, prior_std=PRIOR)
        enc.add_raw("step", np.array([3], dtype=np.int64))
    assert enc.report is not None
    return enc.report


def assert_same_rate(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for n in a:
        assert a[n]["kl_bits"] == pytest.approx(b[n]["kl_bits"], rel=1e-12)
        assert a[n]["message_bits"] == pytest.approx(b[n]["message_bits"], rel=1e-12)
        for k in ("blocks", "over_budget_blocks"):
            assert a[n][k] == b[n][k]
        assert a[n]["worst_excess_bits"] == pytest.approx(b[n]["worst_excess_bits"], rel=1e-12)


def test_stream_encoder_reports_the_rate_of_relcode_encode(tmp_path: Path) -> None:
    rep = stream(tmp_path / "s.relc")  # 207 coded elements in 4 groups
    ref = relcode.encode(io.BytesIO(), tensors(), chunk_size=64, **KW)
    assert rep.groups == 4
    assert_same_rate(rep.rate, ref.rate)
    assert rep.over_budget.keys() == {"w"} and rep.rate["w"]["over_budget_blocks"] == 1
    assert sum(r["message_bits"] for r in rep.rate.values()) == pytest.approx(rep.bits)


def test_strict_stream_encoder_refuses_before_coding_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "s.relc"
    coded = []
    real = relcode.streaming.encode_chunk
    monkeypatch.setattr(relcode.streaming, "encode_chunk", lambda spec: coded.append(spec.g) or real(spec))
    with pytest.raises(relcode.InputError, match=r'tensor "w", element 34'):
        stream(dest, max_excess=0)
    assert coded == []  # the budget pass refused before any group was coded
    assert list(tmp_path.iterdir()) == []
    stream(dest, max_excess=0, outlier=None)
    assert dest.exists() and coded


def test_stream_budget_pass_runs_before_the_coder_can_fail(tmp_path: Path) -> None:
    # dad_star (a budget of depth + 1 bits) cannot code a posterior wider than its prior,
    # which only the coder finds out; that element is in group 0, the outlier (element 34)
    # in group 1
    def enc(max_excess):
        with relcode.StreamEncoder(
            tmp_path / "d.relc", seed=1, method="dad_star", depth=9, layout="fixed", block_size=1,
            chunk_size=32, progress=False, workers=1, max_excess=max_excess,
        ) as e:  # fmt: skip
            w, s = posterior()["w"]
            s = s.copy()
            s.flat[0] = 0.101
            e.add("w", w, s, prior_std=PRIOR)

    with pytest.raises(relcode.InputError, match="needs every posterior std below the prior std"):
        enc(None)
    with pytest.raises(
        relcode.InputError, match=r"of group 1 exceed their 10-bit dad_star budget.*element 34"
    ):
        enc(0.0)
    assert list(tmp_path.iterdir()) == []


def test_encode_group_payloads_reports_rows_per_tensor_piece() -> None:
    kw = {"method": "mrc", "bits_per_block": BITS}
    (wm, ws), (bm, bs) = posterior()["w"], posterior()["b"]
    qm = np.concatenate([bm, wm.reshape(-1)])
    qs = np.concatenate([bs, ws.reshape(-1)])
    pieces = [("b", 0, 7), ("w", 0, 200)]
    *_, rep = F.encode_group_payloads(0, 1, 0, qm, qs, 0.0, PRIOR, tensors=pieces, **kw)
    rows = rep["rate"]
    assert [(r["name"], r["first"], r["count"]) for r in rows] == pieces
    assert rows[1]["over_budget_blocks"] == 1
    assert rows[1]["worst_excess_bits"] == pytest.approx(kl_bits(OUTLIER, 0.05) - BITS, abs=1e-6)
    assert sum(r["message_bits"] for r in rows) == pytest.approx(rep["bits"])
    # without pieces: one row for the group
    *_, whole = F.encode_group_payloads(0, 1, 0, qm, qs, 0.0, PRIOR, **kw)
    [row] = whole["rate"]
    assert row["name"] is None and row["count"] == qm.size and row["over_budget_blocks"] == 1
    # strict: refused, naming the piece's tensor and its element
    with pytest.raises(relcode.InputError, match=r'tensor "w", element 34'):
        F.encode_group_payloads(0, 1, 0, qm, qs, 0.0, PRIOR, tensors=pieces, max_excess=0, **kw)
    with pytest.raises(relcode.InputError, match="pieces cover"):
        F.encode_group_payloads(0, 1, 0, qm, qs, 0.0, PRIOR, tensors=[("w", 0, 5)], **kw)
    # the check alone: the budget, or None for an exact method
    assert F.check_group_budget(0, 1, 0, qm, qs, 0.0, PRIOR, max_excess=200, **kw) == BITS
    with pytest.raises(relcode.InputError, match="budget"):
        F.check_group_budget(0, 1, 0, qm, qs, 0.0, PRIOR, max_excess=0, **kw)
    exact = dict(method="pfr", bits=None)
    assert F.check_group_budget(0, 1, 0, qm, qs, 0.0, PRIOR, max_excess=0, **exact) is None


def test_dask_encoder_reports_the_rate(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    import relcode.distributed

    t = {n: (m, s, 0.0, PRIOR) for n, (m, s) in posterior().items()}
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None, silence_logs=50) as cl,
        distributed.Client(cl) as client,
    ):
        rep = relcode.distributed.encode(
            tmp_path / "d.relc", t, client=client, chunk_size=64, progress=False, **KW
        )
        with pytest.raises(relcode.InputError, match="budget"):
            relcode.distributed.encode(
                tmp_path / "e.relc", t, client=client, chunk_size=64, progress=False, max_excess=0, **KW
            )
    ref = relcode.encode(io.BytesIO(), t, chunk_size=64, **KW)
    assert_same_rate(rep.rate, ref.rate)
    assert [p.name for p in tmp_path.iterdir()] == ["d.relc"]


# ---------------------------------------------------------------------------------------
# relcode encode


@pytest.fixture
def post_file(tmp_path: Path) -> Path:
    st = {}
    for n, (m, s) in posterior().items():
        st[f"{n}.mean"] = m.astype(np.float32)
        st[f"{n}.std"] = s.astype(np.float32)
    path = tmp_path / "post.safetensors"
    save_file(st, str(path))
    return path


def cli(path: Path, out: Path, *extra: str) -> int:
    args = ["encode", str(path), "-o", str(out), "--method", "mrc", "--bits-per-block", str(BITS)]
    return main([*args, "--prior-std", str(PRIOR), "--chunk-size", "64", *extra])


def test_cli_json_has_the_rate_table_and_quiet_still_warns(post_file: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "m.relc"
    assert cli(post_file, out, "--json", "-q") == 0
    captured = capsys.readouterr()
    rate = json.loads(captured.out)["rate"]
    assert set(rate) == {"w", "b"} and set(rate["w"]) == RATE_KEYS
    assert rate["w"]["over_budget_blocks"] == 1 and rate["b"]["over_budget_blocks"] == 0
    # one warning line for the affected tensor, and no summary (quiet)
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "warning" in lines[0] and "'w'" in lines[0] and "1 of" in lines[0] and "--max-excess" in lines[0]
    assert "wrote" not in captured.err
    # without -q: the warning and the summary
    assert cli(post_file, out) == 0
    err = capsys.readouterr().err
    assert "warning" in err and "wrote" in err


def test_cli_no_warning_without_over_budget_blocks(tmp_path: Path, capsys) -> None:
    st = {}
    for n, (m, s) in posterior(None).items():
        st[f"{n}.mean"], st[f"{n}.std"] = m.astype(np.float32), s.astype(np.float32)
    save_file(st, str(tmp_path / "p.safetensors"))
    assert cli(tmp_path / "p.safetensors", tmp_path / "m.relc", "-q") == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("flag", [["--max-excess", "0"], ["--strict-budget"], ["--max-excess", "5.5"]])
def test_cli_strict_budget_fails_and_writes_nothing(post_file: Path, tmp_path: Path, capsys, flag) -> None:
    out = tmp_path / "out" / "m.relc"
    out.parent.mkdir()
    assert cli(post_file, out, *flag, "-q") == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err and 'tensor "w"' in captured.err and "mrc budget" in captured.err
    assert list(out.parent.iterdir()) == []
    # a tolerance above the excess: written, and still warned about
    assert cli(post_file, out, "--max-excess", "1000", "-q") == 0
    assert "warning" in capsys.readouterr().err and os.path.exists(out)
