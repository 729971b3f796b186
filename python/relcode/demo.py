"""``relcode demo``: compress LeNet-5 to about 2 kB with relative entropy coding.

The steps, on scikit-learn's handwritten digits upsampled to 28×28 (a fixed, stratified split:
1,437 training and 360 test images):

1. train the Caffe LeNet-5 (431,080 parameters, 1.72 MB as float32): the uncompressed model;
2. view it as a Bayesian network with MIRACLE's weight sharing (conv2 in pairs, fc1 in groups
   of 50, random signs: 26,580 coded variables), a learned zero-mean Gaussian prior per tensor
   and the Mean-KL posterior, every block of variables at exactly 16 bits of KL; train it;
3. code it block by block with truncated PFR over 2^16 candidates, fine-tuning the blocks not
   yet coded between rounds, into a relcode file of at most 2,000 bytes, all of it counted
   (header, priors, layout, messages, index);
4. decompress the file in a fresh Python process into an ordinary ``nn.Module`` and check its
   predictions against the encoder's final coded model;
5. compare with 8-bit and 4-bit uniform quantisation plus zlib: on all weights, and after
   global magnitude pruning down to the smallest size that is still at least the relcode
   file's (so the baselines never get fewer bytes).

Progress goes to stderr; the table (or, with ``--json``, the same numbers as JSON) to stdout.
Everything runs on the CPU with one thread and takes a few minutes; the numbers are measured,
not recorded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "run"]

#: The byte budget of the relcode file (the whole file).
TARGET_BYTES = 2000
#: MIRACLE's LeNet-5 weight sharing (models/mnist.py): conv2 in pairs, fc1 in groups of 50.
HASHING = {"2.weight": 2, "5.weight": 50}
BITS = 16
SEED = 0
PRETRAIN_EPOCHS = 12
BAYES_STEPS = 600
ROUNDS = 12
STEPS_PER_ROUND = 30


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _predictions_digest(logits: Any) -> str:
    return hashlib.sha256(logits.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _child(path: str) -> None:
    """Runs in a fresh process: decompress ``path`` into a new LeNet-5 and report its test
    error and a digest of its test logits as JSON on stdout."""
    import torch

    from .torch import decompress
    from .torch.datasets import digits
    from .torch.models import lenet5

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    model = lenet5()
    keys = decompress(path, model)
    data = digits(28)
    model.eval()
    with torch.no_grad():
        logits = model(data.x_test)
    error = int((logits.argmax(-1) != data.y_test).sum()) / len(data.y_test)
    out = {
        "test_error": error,
        "logits_sha256": _predictions_digest(logits),
        "missing_keys": keys.missing_keys,
        "unexpected_keys": keys.unexpected_keys,
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(out))


def _decompress_in_fresh_process(path: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = f"from relcode.demo import _child; _child({str(path)!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"decompressing in a fresh process failed:\n{proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _error(model: Any, x: Any, y: Any) -> float:
    from .torch.training import evaluate

    return 1.0 - evaluate(model, x, y)


def _pretrain(data: Any, epochs: int) -> Any:
    import torch
    from tqdm.auto import tqdm

    from .torch.models import lenet5
    from .torch.training import batches

    model = lenet5()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train = batches(data.x_train, data.y_train, 64, seed=SEED)
    steps = epochs * len(train)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    model.train()
    with tqdm(total=steps, desc="training LeNet-5", file=sys.stderr, leave=False) as bar:
        for _ in range(epochs):
            for x, y in train:
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                bar.update(1)
    model.eval()
    return model


def _fit_blocks(model: Any, target: int) -> Any:
    """The Bayesian view with the most blocks whose whole file fits ``target`` bytes. With
    fixed-length messages the size is the header (independent of the block count) plus
    ``bits`` per block, so one probe file gives it."""
    from .torch import BayesianModel
    from .torch.compress import file_size

    def view(block_size: int) -> Any:
        return BayesianModel(model, bits=BITS, block_size=block_size, hashing=HASHING, seed=SEED)

    probe = view(64)
    overhead = file_size(probe) - math.ceil(probe.n_blocks * BITS / 8)
    blocks = (target - overhead) * 8 // BITS
    if blocks < 1:
        raise RuntimeError(f"the file header alone needs {overhead} bytes, more than {target}")
    bm = view(math.ceil(probe.n_vars / blocks))
    size = file_size(bm)
    if size > target:  # pragma: no cover - the size model above is exact
        raise RuntimeError(f"internal error: the file would have {size} bytes, more than {target}")
    return bm


def run(*, progress: bool = True) -> dict[str, Any]:
    """Runs the demo and returns its results (see the module docstring)."""
    import numpy as np
    import torch

    from .torch import compress, fit
    from .torch.baselines import prune_to_size, quantise
    from .torch.datasets import digits
    from .torch.training import batches

    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    data = digits(28)
    _log(f"digits at 28x28: {len(data.y_train)} training, {len(data.y_test)} test images")

    t0 = time.perf_counter()
    original = _pretrain(data, PRETRAIN_EPOCHS)
    seconds["train_original"] = time.perf_counter() - t0
    n_params = sum(p.numel() for p in original.parameters())
    original_bytes = 4 * n_params
    err_original = _error(original, data.x_test, data.y_test)
    _log(f"uncompressed LeNet-5: {n_params:,} parameters, test error {100 * err_original:.2f} %")

    t0 = time.perf_counter()
    bm = _fit_blocks(original, TARGET_BYTES)
    _log(
        f"Bayesian view: {bm.n_vars:,} coded variables in {bm.n_blocks} blocks of "
        f"{int(bm.blocks.sizes.max())}, {BITS} bits each (Mean-KL)"
    )
    train = batches(data.x_train, data.y_train, 64, seed=SEED + 1)
    fit(bm, train, BAYES_STEPS, progress="training the Bayesian LeNet-5" if progress else False)
    seconds["train_bayesian"] = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="relcode-demo-") as tmp:
        path = Path(tmp) / "lenet5.relc"
        t0 = time.perf_counter()
        report = compress(
            bm, path, train, rounds=ROUNDS, steps=STEPS_PER_ROUND, method="pfr", progress=progress
        )
        seconds["compress"] = time.perf_counter() - t0
        file_bytes = path.stat().st_size
        with torch.no_grad():
            encoder_logits = report.model.eval()(data.x_test)
        err_encoder = int((encoder_logits.argmax(-1) != data.y_test).sum()) / len(data.y_test)
        t0 = time.perf_counter()
        child = _decompress_in_fresh_process(path)
        seconds["decompress_fresh_process"] = time.perf_counter() - t0
    identical = child["logits_sha256"] == _predictions_digest(encoder_logits)
    _log(
        f"relcode file: {file_bytes} bytes ({report.message_bits // 8} of messages); "
        f"decompressed test error {100 * child['test_error']:.2f} %, identical predictions: {identical}"
    )

    t0 = time.perf_counter()
    state = original.state_dict()
    baselines = []
    from .torch.models import lenet5

    for bits in (8, 4):
        for pruned in (False, True):
            q = prune_to_size(state, bits, file_bytes) if pruned else quantise(state, bits)
            net = lenet5()
            net.load_state_dict(q.state_dict)
            baselines.append(
                {
                    "name": f"{bits}-bit uniform + zlib" + (" after magnitude pruning" if pruned else ""),
                    "bits": bits,
                    "pruned_fraction": q.pruned,
                    "bytes": q.bytes,
                    "test_error": _error(net, data.x_test, data.y_test),
                }
            )
    seconds["baselines"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_start
    at_size = [b for b in baselines if b["bytes"] >= file_bytes and b["pruned_fraction"] > 0]
    return {
        "dataset": "scikit-learn digits, bilinear 8x8 -> 28x28",
        "train_images": len(data.y_train),
        "test_images": len(data.y_test),
        "parameters": n_params,
        "original_bytes": original_bytes,
        "compressed_bytes": file_bytes,
        "message_bytes": report.message_bits // 8,
        "blocks": bm.n_blocks,
        "bits_per_block": BITS,
        "coded_variables": bm.n_vars,
        "test_error_original": err_original,
        "test_error_compressed": child["test_error"],
        "test_error_encoder": err_encoder,
        "identical_predictions": bool(identical),
        "baselines": baselines,
        "beats_baselines_at_equal_size": bool(all(child["test_error"] < b["test_error"] for b in at_size)),
        "within_one_point": bool(child["test_error"] - err_original <= 0.01 + 1e-12),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "settings": {
            "hashing": HASHING,
            "parameterisation": bm.parameterisation,
            "method": "pfr (truncated, 2^16 candidates)",
            "pretrain_epochs": PRETRAIN_EPOCHS,
            "bayesian_steps": BAYES_STEPS,
            "rounds": ROUNDS,
            "fine_tuning_steps_per_round": STEPS_PER_ROUND,
            "threads": torch.get_num_threads(),
            "numpy": np.__version__,
            "torch": torch.__version__,
        },
    }


def _table(r: dict[str, Any]) -> str:
    rows = [
        ("uncompressed LeNet-5 (float32)", r["original_bytes"], r["test_error_original"]),
        (
            f"relcode (Mean-KL, {r['blocks']} x {r['bits_per_block']}-bit blocks)",
            r["compressed_bytes"],
            r["test_error_compressed"],
        ),
    ]
    for b in r["baselines"]:
        name = b["name"]
        if b["pruned_fraction"] > 0:
            name = f"{b['bits']}-bit + zlib, {100 * b['pruned_fraction']:.2f} % pruned"
        rows.append((name, b["bytes"], b["test_error"]))
    width = max(len(n) for n, _, _ in rows)
    lines = [
        f"LeNet-5 ({r['parameters']:,} parameters) on {r['dataset']} "
        f"({r['train_images']} training / {r['test_images']} test images)",
        "",
        f"{'model':<{width}}  {'bytes':>10}  {'ratio':>7}  {'test error':>10}",
    ]
    for name, size, err in rows:
        ratio = r["original_bytes"] / size
        lines.append(f"{name:<{width}}  {size:>10,}  {ratio:>6.0f}x  {100 * err:>8.2f} %")
    lines += [
        "",
        f"relcode file: {r['compressed_bytes']} bytes in all ({r['message_bytes']} bytes of messages); "
        f"{r['coded_variables']:,} coded variables (MIRACLE's weight sharing: conv2 in pairs, fc1 in "
        "groups of 50); decompressed in a fresh process",
        "predictions identical to the encoder's coded model: "
        + ("yes" if r["identical_predictions"] else "NO"),
        f"within 1 point of the uncompressed error: {'yes' if r['within_one_point'] else 'no'}; "
        f"better than the quantisation baselines at equal or larger size: "
        f"{'yes' if r['beats_baselines_at_equal_size'] else 'no'}",
        "time: " + ", ".join(f"{k.replace('_', ' ')} {v:.0f} s" for k, v in r["seconds"].items()),
    ]
    return "\n".join(lines)


def main(json_output: bool = False) -> int:
    """Entry point of ``relcode demo``: prints the table (or JSON with ``json_output``).
    Exit status 1 when the decompressed model's predictions differ from the encoder's."""
    from .deps import require

    require("demo", "relcode demo")
    results = run(progress=True)
    if json_output:
        print(json.dumps(results, indent=2))
    else:
        print(_table(results))
    if not results["identical_predictions"] or not math.isfinite(results["test_error_compressed"]):
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main("--json" in sys.argv[1:]))
