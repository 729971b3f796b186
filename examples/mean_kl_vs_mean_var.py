"""Mean-KL against Mean-Var: how fast each meets its KL budget and converges, how accurate the
coded network is, and how it survives magnitude pruning.

Both parameterisations train the same network (an MLP 64-300-100-10, 50,610 weights, on
scikit-learn's 8×8 digits: a training, a validation and a test split) from the same initial
means (a fresh initialisation by default, so that convergence speed means something;
``--init pretrained`` starts from a trained network instead), with the same block layout
(blocks of 50 weights, 16 bits each: 1,013 blocks, 2 kB of messages), prior (learned
N(0, σ_l²) per tensor), batch size and number of steps. What differs is how the KL budget is
enforced:

* Mean-Var (MIRACLE): mean and softplus std; per-block penalty β_b·KL_b with β_b multiplied
  or divided by (1 + ε) after every step. MIRACLE uses ε = 5e-5 and β₀ = 1e-8, which needs
  hundreds of thousands of steps; the defaults here (β₀ = 1e-5, ε = 3e-3, learning rate 3e-3)
  were the best of a small sweep on this problem (β₀ ∈ {1e-8, 1e-5}, ε ∈ {1e-3, 3e-3, 1e-2},
  learning rate ∈ {1e-3, 3e-3}); faster annealing oscillates and diverges.
* Mean-KL: every block is at its budget by construction (σ from the mean and the KL share in
  closed form through Lambert W₀); the loss is the data term alone.

Measured per run: (1) the first step at which every block's KL is within ±0.1 bit of the
budget (and the share of blocks within it at the end); (2) the first step at which the
validation accuracy (posterior means) comes within 0.5 points of its final value, on the curve
smoothed by a centred moving average over 5 evaluations (the validation set has 288 images, so
one image is 0.35 points), and the final value being the smoothed value at the last step;
(3) test accuracy after progressive coding (truncated PFR, 2^16 candidates, fine-tuning between
rounds) of every block; (4) test accuracy of the coded network after zeroing the 10 … 90 %
smallest-magnitude coded weights. Writes a PNG and prints a table; ``--json`` adds the numbers
as JSON.

Run: ``python examples/mean_kl_vs_mean_var.py [--steps 6000] [--out DIR]`` (several minutes on
one CPU thread).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

import relcode.torch as rt
from relcode.torch.baselines import prune
from relcode.torch.datasets import digits
from relcode.torch.models import mlp
from relcode.torch.training import Trainer, batches, evaluate

BITS = 16
BLOCK = 50
BAND_BITS = 0.1
ACC_BAND = 0.005
SMOOTH = 5
PRUNE = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


def centred_average(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` points centred on each point (shorter at the ends)."""
    half = width // 2
    c = np.concatenate([[0.0], np.cumsum(x)])
    lo = np.maximum(np.arange(len(x)) - half, 0)
    hi = np.minimum(np.arange(len(x)) + half + 1, len(x))
    return (c[hi] - c[lo]) / (hi - lo)


def fresh(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return mlp((64, 300, 100, 10))


def pretrain(data, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = mlp((64, 300, 100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(15):
        for x, y in batches(data.x_train, data.y_train, 64, seed=seed + epoch):
            loss = torch.nn.functional.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def run_one(name: str, net, data, args) -> dict:
    torch.manual_seed(args.seed + 1)
    options = {"beta_init": args.beta_init, "beta_step": args.beta_step} if name == "mean_var" else {}
    bm = rt.BayesianModel(net, bits=BITS, block_size=BLOCK, parameterisation=name,
                          parameterisation_options=options, seed=args.seed)  # fmt: skip
    lr = args.lr_mean_var if name == "mean_var" else None
    train = batches(data.x_train, data.y_train, 64, seed=args.seed + 2)
    trainer = Trainer(bm, train, lr=lr)
    budget = bm.kl_bits
    curve_steps, worst, within, val = [], [], [], []

    def record(step: int) -> None:
        with torch.no_grad():
            kl = bm.block_kl().detach().double().numpy() / math.log(2)
        dev = np.abs(kl - budget)
        curve_steps.append(step)
        worst.append(float(dev.max()))
        within.append(float((dev <= BAND_BITS).mean()))
        val.append(evaluate(bm, data.x_val, data.y_val))

    t0 = time.perf_counter()
    record(0)
    for step in range(1, args.steps + 1):
        trainer.step()
        if step % args.every == 0 or step == args.steps:
            record(step)
    train_seconds = time.perf_counter() - t0
    steps = np.array(curve_steps)
    ok_kl = np.flatnonzero(np.array(worst) <= BAND_BITS)
    steps_to_budget = int(steps[ok_kl[0]]) if ok_kl.size else None
    smooth = centred_average(np.array(val), SMOOTH)
    final = float(smooth[-1])
    steps_to_accuracy = int(steps[np.flatnonzero(smooth >= final - ACC_BAND)[0]])
    acc_before = evaluate(bm, data.x_test, data.y_test)

    t0 = time.perf_counter()
    enc = rt.encode_progressive(bm, train, rounds=args.rounds, steps=args.fine_tune, lr=lr, progress=False)
    code_seconds = time.perf_counter() - t0
    coded = bm.plain_model()
    acc_coded = evaluate(coded, data.x_test, data.y_test)
    names = [t.name for t in bm.tensors]
    state = coded.state_dict()
    pruning = []
    for frac in PRUNE:
        model = mlp((64, 300, 100, 10))
        model.load_state_dict(prune(state, frac, names))
        pruning.append(evaluate(model, data.x_test, data.y_test))
    w = torch.cat([state[n].reshape(-1) for n in names]).double().numpy()
    z = (w - w.mean()) / w.std()
    return {
        "name": name,
        "blocks": bm.n_blocks,
        "variables": bm.n_vars,
        "message_bits": enc.total_bits,
        "steps": args.steps,
        "curve_steps": curve_steps,
        "worst_block_deviation_bits": worst,
        "fraction_blocks_within_band": within,
        "val_accuracy": val,
        "steps_to_kl_budget": steps_to_budget,
        "steps_to_final_accuracy": steps_to_accuracy,
        "final_val_accuracy": final,
        "fraction_blocks_within_band_at_end": within[-1],
        "worst_block_deviation_bits_at_end": worst[-1],
        "test_accuracy_before_coding": acc_before,
        "test_accuracy_after_coding": acc_coded,
        "kl_bits_when_coded_mean": float(np.mean(enc.kl_bits)),
        "kl_bits_when_coded_max_deviation": float(np.max(np.abs(enc.kl_bits - budget))),
        "pruning_fractions": PRUNE,
        "pruning_test_accuracy": pruning,
        "coded_weight_kurtosis": float(np.mean(z**4) - 3),
        "seconds": {"training": train_seconds, "coding": code_seconds},
    }


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in results:
        label = {"mean_kl": "Mean-KL", "mean_var": "Mean-Var"}[r["name"]]
        ax[0].semilogy(r["curve_steps"], np.maximum(r["worst_block_deviation_bits"], 1e-7), label=label)
        ax[1].plot(r["curve_steps"], 100 * np.array(r["val_accuracy"]), label=label)
        ax[2].plot(100 * np.array(r["pruning_fractions"]), 100 * np.array(r["pruning_test_accuracy"]), "o-",
                   label=label)  # fmt: skip
    ax[0].axhline(BAND_BITS, color="grey", ls="--", lw=1)
    ax[0].set(xlabel="training step", ylabel="max over blocks |KL − budget| (bits)", title="KL budget")
    ax[1].set(xlabel="training step", ylabel="validation accuracy (%)", title="convergence (posterior means)")
    ax[1].set_ylim(50, 100)
    ax[2].set(
        xlabel="coded weights pruned (%)", ylabel="test accuracy (%)", title="after coding, magnitude pruning"
    )
    for a in ax:
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(results: list[dict]) -> str:
    def fmt_steps(v):
        return "not reached" if v is None else str(v)

    rows = [
        ("steps until every block is within ±0.1 bit", lambda r: fmt_steps(r["steps_to_kl_budget"])),
        (
            "blocks within ±0.1 bit at the end",
            lambda r: f"{100 * r['fraction_blocks_within_band_at_end']:.1f} %",
        ),
        ("max |KL − budget| at the end", lambda r: f"{r['worst_block_deviation_bits_at_end']:.2g} bit"),
        ("steps until val. accuracy is within 0.5 pt", lambda r: str(r["steps_to_final_accuracy"])),
        ("final validation accuracy (smoothed)", lambda r: f"{100 * r['final_val_accuracy']:.2f} %"),
        ("test accuracy before coding (means)", lambda r: f"{100 * r['test_accuracy_before_coding']:.2f} %"),
        ("test accuracy after coding", lambda r: f"{100 * r['test_accuracy_after_coding']:.2f} %"),
        (
            "max |KL − budget| of a block when coded",
            lambda r: f"{r['kl_bits_when_coded_max_deviation']:.3f} bit",
        ),
    ]
    for i, f in enumerate(PRUNE[1:], 1):
        rows.append(
            (
                f"test accuracy, {int(100 * f)} % pruned",
                lambda r, i=i: f"{100 * r['pruning_test_accuracy'][i]:.2f} %",
            )
        )
    rows.append(("excess kurtosis of coded weights", lambda r: f"{r['coded_weight_kurtosis']:.2f}"))
    rows.append(("training seconds", lambda r: f"{r['seconds']['training']:.0f}"))
    width = max(len(n) for n, _ in rows)
    head = f"{'':<{width}}  {'Mean-KL':>12}  {'Mean-Var':>12}"
    by = {r["name"]: r for r in results}
    lines = [head]
    for name, f in rows:
        lines.append(f"{name:<{width}}  {f(by['mean_kl']):>12}  {f(by['mean_var']):>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=6000, help="training steps per parameterisation")
    p.add_argument("--every", type=int, default=50, help="evaluate every this many steps")
    p.add_argument("--rounds", type=int, default=20, help="coding rounds")
    p.add_argument("--fine-tune", type=int, default=20, help="fine-tuning steps between rounds")
    p.add_argument("--beta-init", type=float, default=1e-5, help="Mean-Var: initial β (MIRACLE: 1e-8)")
    p.add_argument(
        "--beta-step", type=float, default=3e-3, help="Mean-Var: ε of β ← β(1 ± ε) (MIRACLE: 5e-5)"
    )
    p.add_argument("--lr-mean-var", type=float, default=3e-3, help="Mean-Var learning rate")
    p.add_argument("--init", choices=["scratch", "pretrained"], default="scratch", help="initial means")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("."), help="directory for the PNG (and JSON)")
    p.add_argument("--json", action="store_true", help="also write the numbers as JSON next to the PNG")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    data = digits(8, val_fraction=0.2, seed=args.seed)
    net = pretrain(data, args.seed) if args.init == "pretrained" else fresh(args.seed)
    acc = evaluate(net, data.x_test, data.y_test)
    sizes = f"{len(data.y_train)} train / {len(data.y_val)} val / {len(data.y_test)} test"
    print(f"{args.init} MLP: test accuracy {100 * acc:.2f} % ({sizes})", file=sys.stderr)
    results = []
    for name in ("mean_kl", "mean_var"):
        print(f"training {name} ...", file=sys.stderr, flush=True)
        results.append(run_one(name, net, data, args))
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "mean_kl_vs_mean_var.png"
    plot(results, png)
    r0 = results[0]
    print(
        f"MLP 64-300-100-10 on digits, {r0['variables']:,} weights in {r0['blocks']} blocks of {BITS} bits "
        f"({r0['message_bits'] // 8} bytes of messages); {args.init} init; {args.steps} steps; "
        f"Mean-Var ε = {args.beta_step}, "
        f"β₀ = {args.beta_init}, lr {args.lr_mean_var}; Mean-KL lr 3e-2"
    )
    print(table(results))
    print(f"plot: {png}")
    if args.json:
        (args.out / "mean_kl_vs_mean_var.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
