"""Rate-distortion evaluation of relcode.inr (COMBINER) against JPEG and JPEG 2000.

Usage (from the repository root; the Kodak images are read from ``../shared/data/kodak``)::

    PYTHONPATH=python python benches/inr_eval.py --out bench-results/inr

Writes ``results.json``, ``table.md`` and ``rd.png`` to the output folder and prints the table.

What it measures, honestly and on the CPU (full Kodak images are GPU work):

1. **Codecs** are trained on random 64x64 crops of scikit-learn's and scikit-image's sample
   images (never a Kodak image), one per nominal rate, with the settings of the shipped
   codecs, plus a *fixed-prior* codec for the ablation (same procedure without the
   M-step). ``--codecs DIR`` uses the learned codecs in DIR instead (for example
   ``python/relcode/inr/codecs``, which the same procedure produced).
2. **64x64 crops**: random crops of Kodak images, each compressed as its own file at
   whole-file targets (``--crop-bpp``); JPEG (Pillow, default settings and with
   ``optimize=True``) and JPEG 2000 (Pillow/OpenJPEG) get the largest quality whose whole
   file is no larger than relcode's.
3. **Kodak at low rates, on a subset of patches**: ``--patches`` aligned 64x64 patches of
   each of ``--images`` Kodak images are coded together as one signal (the full-image
   pipeline on fewer patches), with as many blocks as a whole 768x512 file at the target
   rate would give them (the header of a whole-image file, measured, is amortised over its
   96 patches). JPEG and JPEG 2000 code the *whole* image at that rate; their PSNR is
   measured on the same patches (and on the whole image).
4. **Ablations** on the same patches at the first Kodak rate: learned against fixed prior,
   fine-tuning against none.
5. **Times**: encode seconds per patch; decoding a whole 768x512 image (96 patches) in this
   process and with the CLI in a fresh process.
6. **Audio** (where espeak-ng is installed): a codec trained on synthesised sentences codes
   3 s of another sentence at ``--audio-kbps``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"


# ---------------------------------------------------------------------------------------
# data


def training_images() -> list[np.ndarray]:
    """Permissively licensed sample images shipped with scikit-learn and scikit-image."""
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    imgs = list(load_sample_images().images)  # china.jpg, flower.jpg (CC BY 2.0)
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"):
        imgs.append(np.ascontiguousarray(getattr(skd, name)()[:, :, :3]))
    return imgs


def kodak(i: int, folder: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(folder / f"kodim{i:02d}.png") as im:
        return np.asarray(im.convert("RGB"))


def _portable(path: Path) -> str:
    """A path as recorded in results: relative to the repository root where possible (results
    are shared, this machine's directories are not)."""
    try:
        rel = os.path.relpath(path.resolve(), ROOT)
    except ValueError:
        return path.name
    return path.name if rel.startswith(os.path.join("..", "..")) else rel


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * math.log10(255.0**2 / mse) if mse > 0 else float("inf")


# ---------------------------------------------------------------------------------------
# baselines


def jpeg(img: np.ndarray, max_bytes: int, optimize: bool) -> tuple[int, np.ndarray] | None:
    """The highest-quality JPEG no larger than ``max_bytes`` (None if even quality 1 is)."""
    from PIL import Image

    best = None
    lo, hi = 1, 95
    while lo <= hi:
        q = (lo + hi) // 2
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q, optimize=optimize)
        n = len(buf.getvalue())
        if n <= max_bytes:
            best = (n, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
            lo = q + 1
        else:
            hi = q - 1
    return best


def jpeg2000(img: np.ndarray, max_bytes: int) -> tuple[int, np.ndarray] | None:
    """The JPEG 2000 file (irreversible 9/7, one quality layer at a compression ratio found
    by bisection) with the most bytes not above ``max_bytes``."""
    from PIL import Image

    raw = img.size
    best = None
    lo, hi = 1.0, 4000.0
    for _ in range(28):
        ratio = math.sqrt(lo * hi)
        buf = io.BytesIO()
        Image.fromarray(img).save(
            buf, format="JPEG2000", quality_mode="rates", quality_layers=[ratio], irreversible=True
        )
        n = len(buf.getvalue())
        if n <= max_bytes:
            if best is None or n > best[0]:
                best = (n, np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))
            hi = ratio
        else:
            lo = ratio
        if hi / lo < 1.002:
            break
    if best is None and raw <= max_bytes:
        return None
    return best


def jpeg_floor(img: np.ndarray, optimize: bool) -> tuple[int, float]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=1, optimize=optimize)
    d = buf.getvalue()
    return len(d), psnr(np.asarray(Image.open(io.BytesIO(d)).convert("RGB")), img)


# ---------------------------------------------------------------------------------------
# relcode


def train_codecs(args, out: Path, have: dict[str, Path]) -> dict[str, Path]:
    """Trains the learned codecs (unless ``--codecs`` gave them) and the fixed-prior codec
    of the ablation (unless present), into ``OUT/codecs``."""
    from relcode.inr import image

    folder = out / "codecs"
    folder.mkdir(parents=True, exist_ok=True)
    imgs = training_images()
    jobs = [] if have else [(f"learned-{r:g}", r, True) for r in args.codec_bpp]
    jobs.append((f"fixed-{args.kodak_bpp[0]:g}", _nearest(args.codec_bpp, args.kodak_bpp[0]), False))
    paths = dict(have)
    for name, rate, learned in jobs:
        path = folder / f"{name}.relc"
        paths[name] = path
        if path.exists():
            continue
        t = time.perf_counter()
        c = image.train_codec(
            imgs,
            bpp=rate,
            arch=image.default_architecture(rate),
            crops=args.train_crops,
            iterations=args.iterations,
            steps=args.em_steps,
            first_steps=args.first_steps,
            update_prior=learned,
            seed=args.seed,
            info={
                "training_set": "sklearn china, flower; skimage astronaut, coffee, chelsea, rocket, hubble"
            },
        )
        c.save(path)
        _log(f"trained codec {name} in {time.perf_counter() - t:.0f} s: {c}")
    return paths


def _nearest(rates, r):
    return min(rates, key=lambda x: abs(math.log(x / r)))


def _codec_for(codecs: dict, bpp: float, learned: bool = True):
    from relcode.inr import load_codec

    cs = [load_codec(p) for p in codecs.values()]
    cs = [c for c in cs if c.kind == "image" and bool(c.info.get("learned_prior", True)) == learned]
    feasible = [c for c in cs if c.min_bits_per_sample() * 1.02 <= bpp] or cs
    return min(feasible, key=lambda c: abs(math.log(c.bits_per_sample() / bpp)))


def settings(args, finetune: bool = True):
    from relcode.inr import EncodeSettings

    return EncodeSettings(
        steps=args.fit_steps,
        finetune_steps=args.finetune_steps,
        rounds=args.rounds,
        finetune=finetune,
        seed=args.seed,
    )


def relcode_code(codec, img: np.ndarray, st, **rate) -> dict:
    """Compresses one image, decodes the file, checks exactness; returns the measures."""
    from relcode.inr import image

    buf = io.BytesIO()
    t = time.perf_counter()
    rep = image.compress(img, buf, codec=codec, settings=st, **rate)
    enc = time.perf_counter() - t
    t = time.perf_counter()
    dec = image.decompress(buf.getvalue(), codec=codec)
    dsec = time.perf_counter() - t
    if not np.array_equal(dec, rep.decoded):
        raise AssertionError("decoded image differs from the encoder's reconstruction")
    return {
        "bytes": rep.bytes,
        "header_bytes": rep.header_bytes,
        "blocks": rep.blocks,
        "decoded": dec,
        "encode_s": enc,
        "decode_s": dsec,
        "message_bits": rep.message_bits,
    }


# ---------------------------------------------------------------------------------------
# experiments


def crops_experiment(args, codecs, folder: Path) -> list[dict]:
    rng = np.random.default_rng(args.seed + 1)
    crops = []
    for _ in range(args.crops):
        img = kodak(int(rng.integers(1, 25)), folder)
        y, x = int(rng.integers(0, img.shape[0] - 63)), int(rng.integers(0, img.shape[1] - 63))
        crops.append(img[y : y + 64, x : x + 64].copy())
    rows = []
    for bpp in args.crop_bpp:
        codec = _codec_for(codecs, max(bpp - 330 * 8 / 4096, 0.05))
        res = {
            "bpp_target": bpp,
            "codec": codec.sha256[:12],
            "relcode": [],
            "jpeg": [],
            "jpeg_opt": [],
            "jpeg2000": [],
        }
        for i, c in enumerate(crops):
            r = relcode_code(codec, c, settings(args), bpp=bpp)
            n = r["bytes"]
            res["relcode"].append(
                {
                    "bytes": n,
                    "psnr": psnr(r["decoded"], c),
                    "encode_s": r["encode_s"],
                    "header_bytes": r["header_bytes"],
                    "blocks": r["blocks"],
                }
            )
            for key, fn in (
                ("jpeg", lambda im, m: jpeg(im, m, False)),
                ("jpeg_opt", lambda im, m: jpeg(im, m, True)),
                ("jpeg2000", jpeg2000),
            ):
                b = fn(c, n)
                if b is None:
                    fb, fp = jpeg_floor(c, key == "jpeg_opt") if key != "jpeg2000" else (None, None)
                    res[key].append({"bytes": None, "psnr": None, "floor_bytes": fb, "floor_psnr": fp})
                else:
                    res[key].append({"bytes": b[0], "psnr": psnr(b[1], c)})
            _log(
                f"crop {i} @ {bpp} bpp: relcode {n} B {res['relcode'][-1]['psnr']:.2f} dB; "
                + ", ".join(
                    f"{k} {res[k][-1]['psnr'] or float('nan'):.2f}" for k in ("jpeg", "jpeg_opt", "jpeg2000")
                )
            )
        rows.append(res)
    return rows


def kodak_patches(args, folder: Path):
    rng = np.random.default_rng(args.seed + 2)
    sel = []
    ids = rng.choice(np.arange(1, 25), size=args.images, replace=False)
    for i in ids:
        img = kodak(int(i), folder)
        gh, gw = img.shape[0] // 64, img.shape[1] // 64
        cells = rng.choice(gh * gw, size=args.patches, replace=False)
        sel.append((int(i), img, [(int(c // gw), int(c % gw)) for c in cells]))
    return sel


def strip(img: np.ndarray, cells) -> np.ndarray:
    return np.concatenate([img[r * 64 : r * 64 + 64, c * 64 : c * 64 + 64] for r, c in cells], axis=1)


def kodak_experiment(args, codecs, folder: Path, ablations: bool) -> dict:
    from relcode.inr.pipeline import header_bytes

    sel = kodak_patches(args, folder)
    out = {"points": [], "ablations": {}}
    full_pixels = 768 * 512
    for bpp in args.kodak_bpp:
        codec = _codec_for(codecs, bpp)
        head = header_bytes(codec, (512, 768), 96)
        per_patch_bits = (bpp * full_pixels - 8 * head) / 96
        variants = [("relcode", codec, True)]
        if ablations and bpp == args.kodak_bpp[0]:
            variants += [
                ("fixed prior", _codec_for(codecs, bpp, learned=False), True),
                ("no fine-tuning", codec, False),
            ]
        point = {"bpp_target": bpp, "full_image_header_bytes": head, "images": []}
        for i, img, cells in sel:
            target = strip(img, cells)
            k = len(cells)
            blocks = int(per_patch_bits * k // codec.bits)
            row = {"image": i, "patches": cells}
            for name, c, ft in variants:
                blk = blocks if c is codec else int(per_patch_bits * k // c.bits)
                r = relcode_code(c, target, settings(args, ft), blocks=blk)
                row[name] = {
                    "psnr": psnr(r["decoded"], target),
                    "message_bits": r["message_bits"],
                    "projected_bpp": (head * 8 + r["message_bits"] * 96 / k) / full_pixels,
                    "subset_file_bytes": r["bytes"],
                    "encode_s": r["encode_s"],
                }
            for key, fn in (
                ("jpeg", lambda im, m: jpeg(im, m, False)),
                ("jpeg_opt", lambda im, m: jpeg(im, m, True)),
                ("jpeg2000", jpeg2000),
            ):
                b = fn(img, int(bpp * full_pixels / 8))
                if b is None:
                    row[key] = None
                    continue
                row[key] = {
                    "bpp": b[0] * 8 / full_pixels,
                    "psnr_full": psnr(b[1], img),
                    "psnr": psnr(strip(b[1], cells), target),
                }
            point["images"].append(row)
            _log(
                f"kodim{i:02d} @ {bpp}: "
                + ", ".join(f"{n} {row[n]['psnr']:.2f}" for n in row if isinstance(row[n], dict))
            )
        out["points"].append(point)
    return out


TRAIN_TEXT = [
    "The quick brown fox jumps over the lazy dog while the farmer watches from the hill.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A journey of a thousand miles begins with a single step taken in the early morning.",
    "Bright stars shone over the quiet village as the children counted them one by one.",
]
TEST_TEXT = "Relative entropy coding sends a sample of the posterior for about its divergence in bits."


def speech(text: str, voice: str) -> np.ndarray | None:
    """Speech synthesised with espeak-ng, resampled to 16 kHz int16 (None without it)."""
    import shutil
    import tempfile

    from scipy.io import wavfile
    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "s.wav"
        subprocess.run([exe, "-v", voice, "-w", str(f), text], check=True, capture_output=True)
        rate, x = wavfile.read(f)
    g = math.gcd(rate, 16000)
    y = resample_poly(x.astype(np.float64), 16000 // g, rate // g)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def audio_experiment(args, out: Path) -> dict | None:
    """A codec trained on synthesised sentences, tested on 3 s of another sentence."""
    from relcode.inr import audio, load_codec, preset

    train = [speech(t, v) for t in TRAIN_TEXT for v in ("en", "en-us")]
    test = speech(TEST_TEXT, "en")
    if test is None:
        _log("espeak-ng is not installed: no audio evaluation")
        return None
    test = test[: 3 * 16000]
    path = out / "codecs" / "audio-learned.relc"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        codec = load_codec(path)
    else:
        codec = audio.train_codec(
            train,
            kbps=args.audio_codec_kbps,
            arch=preset("audio"),
            crops=args.train_crops,
            iterations=args.iterations,
            steps=args.em_steps,
            seed=args.seed,
        )
        codec.save(path)
    rows = []
    for kbps in args.audio_kbps:
        buf = io.BytesIO()
        t = time.perf_counter()
        rep = audio.compress(test, buf, codec=codec, kbps=kbps, settings=settings(args))
        enc = time.perf_counter() - t
        dec = audio.decompress(buf.getvalue(), codec=codec)
        assert np.array_equal(dec, rep.decoded)
        mse = float(np.mean((dec.astype(np.float64) - test) ** 2))
        p = 10 * math.log10(65536.0**2 / mse)
        rows.append(
            {
                "kbps_target": kbps,
                "kbps": rep.bytes * 8 / 3 / 1000,
                "psnr": p,
                "bytes": rep.bytes,
                "blocks": rep.blocks,
                "encode_s": enc,
            }
        )
        _log(f"audio @ {kbps} kbps: {rows[-1]['kbps']:.2f} kbps, PSNR {p:.2f} dB")
    return {"clip_seconds": 3.0, "codec_kbps": args.audio_codec_kbps, "points": rows}


def decode_timing(args, codecs, folder: Path, out: Path) -> dict:
    """Decoding a whole 768x512 image (96 patches): the file is encoded with a very short
    schedule (its quality does not matter for decoding time)."""
    from relcode.inr import EncodeSettings, image

    codec = _codec_for(codecs, 0.3)
    img = kodak(1, folder)
    path = out / "kodim01_timing.relc"
    st = EncodeSettings(steps=args.timing_steps, finetune_steps=0, rounds=1, pixels=256)
    t = time.perf_counter()
    rep = image.compress(img, path, codec=codec, bpp=0.3, settings=st)
    enc = time.perf_counter() - t
    times = []
    for _ in range(3):
        t = time.perf_counter()
        dec = image.decompress(path, codec=codec)
        times.append(time.perf_counter() - t)
    assert np.array_equal(dec, rep.decoded)
    codec_path = next(p for p in codecs.values() if p.exists() and _sha(p) == codec.sha256)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"), OMP_NUM_THREADS="1")
    cli = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "relcode",
                "image",
                "decompress",
                str(path),
                "-o",
                str(out / "kodim01_timing.png"),
                "--codec",
                str(codec_path),
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        cli.append(time.perf_counter() - t)
    return {
        "patches": 96,
        "blocks": rep.blocks,
        "bytes": rep.bytes,
        "bpp": rep.bytes * 8 / img[..., 0].size,
        "header_bytes": rep.header_bytes,
        "decode_s_in_process": min(times),
        "decode_s_cli": min(cli),
        "encode_s_short_schedule": enc,
    }


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------
# report


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return float(np.mean(xs)) if xs else None


def summarise(res: dict) -> str:
    lines = ["# relcode.inr rate-distortion (CPU run)", ""]
    if res.get("crops"):
        lines += ["## 64x64 Kodak crops, one file each (whole-file bytes on both sides)", ""]
        lines += [
            "| target bpp | relcode bpp | relcode PSNR | JPEG PSNR | JPEG (optimize) PSNR | JPEG 2000 PSNR "
            "| header B |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in res.get("crops", []):
            rb = _mean([x["bytes"] * 8 / 4096 for x in r["relcode"]])

            def cell(key, r=r):
                vals = [x["psnr"] for x in r[key]]
                missing = sum(v is None for v in vals)
                m = _mean(vals)
                return ("n/a" if m is None else f"{m:.2f}") + (f" ({missing} n/a)" if missing else "")

            rp = _mean([x["psnr"] for x in r["relcode"]])
            hb = _mean([x["header_bytes"] for x in r["relcode"]])
            lines.append(
                f"| {r['bpp_target']} | {rb:.3f} | {rp:.2f} | {cell('jpeg')} | {cell('jpeg_opt')} | "
                f"{cell('jpeg2000')} | {hb:.0f} |"
            )
        lines += [
            "",
            "n/a: the format cannot reach the rate (JPEG quality 1 is larger than the relcode file).",
            "",
        ]
    k = res.get("kodak")
    if k:
        lines += [
            "## Kodak, subset of 64x64 patches (PSNR on those patches; JPEG/JPEG 2000 code the whole image)",
            "",
            "| target bpp | relcode projected bpp | relcode | JPEG | JPEG (optimize) | JPEG 2000 | "
            "JPEG whole-image PSNR |",
            "|---|---|---|---|---|---|---|",
        ]
        for p in k["points"]:
            im = p["images"]
            pb = _mean([x["relcode"]["projected_bpp"] for x in im])

            def c(key, field="psnr", im=im):
                m = _mean([x[key][field] if x[key] else None for x in im])
                return "n/a" if m is None else f"{m:.2f}"

            lines.append(
                f"| {p['bpp_target']} | {pb:.3f} | {c('relcode')} | {c('jpeg')} | {c('jpeg_opt')} | "
                f"{c('jpeg2000')} | {c('jpeg', 'psnr_full')} |"
            )
        ab = [p for p in k["points"] if "fixed prior" in p["images"][0]]
        if ab:
            p = ab[0]
            lines += [
                "",
                f"## Ablations (Kodak patches, {p['bpp_target']} bpp)",
                "",
                "| variant | PSNR | bpp |",
                "|---|---|---|",
            ]
            for name in ("relcode", "fixed prior", "no fine-tuning"):
                lines.append(
                    f"| {'learned prior, fine-tuning' if name == 'relcode' else name} | "
                    f"{_mean([x[name]['psnr'] for x in p['images']]):.2f} | "
                    f"{_mean([x[name]['projected_bpp'] for x in p['images']]):.3f} |"
                )
    a = res.get("audio")
    if a:
        lines += [
            "",
            "## Audio: 3 s of synthesised speech (espeak-ng), codec trained on other sentences",
            "",
            "| target kbps | kbps (whole file) | PSNR dB |",
            "|---|---|---|",
        ]
        for p in a["points"]:
            lines.append(f"| {p['kbps_target']} | {p['kbps']:.2f} | {p['psnr']:.2f} |")
    t = res.get("timing")
    if t:
        enc = []
        for r in res.get("crops", []):
            enc += [x["encode_s"] for x in r["relcode"]]
        lines += ["", "## Times (this CPU, one torch thread)", ""]
        if enc:
            lines.append(
                f"- encode: {_mean(enc):.1f} s per 64x64 crop ({res['config']['fit_steps']} fitting steps, "
                f"{res['config']['finetune_steps']} fine-tuning steps)"
            )
        lines.append(
            f"- decode 768x512 (96 patches, {t['blocks']} blocks, {t['bytes']} B): "
            f"{t['decode_s_in_process']:.3f} s in process, {t['decode_s_cli']:.3f} s with the CLI "
            "(fresh process, imports included)"
        )
        lines.append(f"- file header: {t['header_bytes']} bytes")
    return "\n".join(lines)


def plot(res: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    series = {"relcode": [], "jpeg": [], "jpeg_opt": [], "jpeg2000": []}
    for r in res.get("crops", []):
        for key in series:
            pts = [(x["bytes"] * 8 / 4096, x["psnr"]) for x in r[key] if x.get("psnr") is not None]
            if pts:
                series[key].append(tuple(np.mean(pts, axis=0)))
    for key, pts in series.items():
        if pts:
            ax.plot(*zip(*sorted(pts)), "o-", label=key)
    ax.set(title="64x64 Kodak crops (whole files)", xlabel="bits per pixel", ylabel="PSNR (dB)")
    ax.legend()
    ax = axes[1]
    k = res.get("kodak")
    if k:
        series = {"relcode": [], "jpeg": [], "jpeg_opt": [], "jpeg2000": []}
        for p in k["points"]:
            im = p["images"]
            series["relcode"].append(
                (
                    _mean([x["relcode"]["projected_bpp"] for x in im]),
                    _mean([x["relcode"]["psnr"] for x in im]),
                )
            )
            for key in ("jpeg", "jpeg_opt", "jpeg2000"):
                v = [x[key] for x in im if x[key]]
                if v:
                    series[key].append((_mean([x["bpp"] for x in v]), _mean([x["psnr"] for x in v])))
        for key, pts in series.items():
            if pts:
                ax.plot(*zip(*sorted(pts)), "o-", label=key)
        for p in k["points"]:
            im = p["images"]
            for name, mk in (("fixed prior", "x"), ("no fine-tuning", "^")):
                if name in im[0]:
                    ax.plot(
                        _mean([x[name]["projected_bpp"] for x in im]),
                        _mean([x[name]["psnr"] for x in im]),
                        mk,
                        label=f"relcode, {name}",
                    )
        ax.set(title="Kodak, subset of patches", xlabel="bits per pixel (whole image)", ylabel="PSNR (dB)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "bench-results" / "inr")
    ap.add_argument("--kodak", type=Path, default=KODAK)
    ap.add_argument(
        "--codecs",
        type=Path,
        help="use the learned image codecs in this folder (for example the shipped ones) instead of training",
    )
    ap.add_argument(
        "--codec-bpp", type=lambda s: [float(x) for x in s.split(",")], default=[0.25, 0.5, 1.0, 2.0]
    )
    ap.add_argument("--crop-bpp", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 1.5, 2.0])
    ap.add_argument("--kodak-bpp", type=lambda s: [float(x) for x in s.split(",")], default=[0.3, 0.6])
    ap.add_argument("--crops", type=int, default=8)
    ap.add_argument("--images", type=int, default=6)
    ap.add_argument("--patches", type=int, default=4)
    ap.add_argument("--train-crops", type=int, default=96)
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--em-steps", type=int, default=60)
    ap.add_argument("--first-steps", type=int, default=200)
    ap.add_argument("--fit-steps", type=int, default=1000)
    ap.add_argument("--finetune-steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--timing-steps", type=int, default=20)
    ap.add_argument("--audio-codec-kbps", type=float, default=8.0)
    ap.add_argument("--audio-kbps", type=lambda s: [float(x) for x in s.split(",")], default=[6.0, 12.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--skip", default="", help="comma-separated parts to skip: crops, kodak, ablations, timing"
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny schedules, two crops, one image")
    args = ap.parse_args(argv)
    if args.quick:
        args.crops, args.images, args.patches, args.train_crops = 2, 1, 2, 8
        args.iterations, args.em_steps, args.fit_steps, args.finetune_steps, args.rounds = 2, 10, 20, 10, 3
        args.first_steps = 10
        args.codec_bpp, args.crop_bpp, args.kodak_bpp = [0.3, 1.0], [1.5], [0.3]
        args.audio_kbps = [12.0]
    if not args.kodak.is_dir():
        _log(f"the Kodak images are not available (expected {args.kodak}); nothing to evaluate")
        return 0
    import torch

    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    if {"crops", "kodak", "timing"} - skip:
        have = {p.stem: p for p in sorted(args.codecs.glob("*.relc"))} if args.codecs else {}
        codecs = train_codecs(args, args.out, have)
    cfg = {k: (_portable(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    res: dict = {"config": cfg}
    if "crops" not in skip:
        res["crops"] = crops_experiment(args, codecs, args.kodak)
    if "kodak" not in skip:
        res["kodak"] = kodak_experiment(args, codecs, args.kodak, "ablations" not in skip)
    if "timing" not in skip:
        res["timing"] = decode_timing(args, codecs, args.kodak, args.out)
    if "audio" not in skip:
        res["audio"] = audio_experiment(args, args.out)
    (args.out / "results.json").write_text(json.dumps(res, indent=1, default=float))
    table = summarise(res)
    (args.out / "table.md").write_text(table + "\n")
    plot(res, args.out / "rd.png")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
