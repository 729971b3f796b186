"""The ``relcode image`` and ``relcode audio`` commands, audio compression of synthesised
speech (espeak-ng; skipped where it is not installed), and the shipped default codecs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("PIL")

from relcode.cli import main
from relcode.errors import InputError
from relcode.inr import EncodeSettings, audio, image, load_codec, shipped_codecs, siren

FAST = ["--steps", "20", "--finetune-steps", "6", "--rounds", "2"]
TINY = [
    "--hidden",
    "8",
    "--layers",
    "3",
    "--features",
    "8",
    "--crops",
    "4",
    "--iterations",
    "2",
    "--steps",
    "5",
]


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skimage.data
    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    for name in ("coffee", "chelsea", "astronaut"):
        Image.fromarray(getattr(skimage.data, name)()[:, :, :3]).save(d / f"{name}.png")
    Image.fromarray(skimage.data.astronaut()[100:164, 150:214]).save(d / "crop.png")
    return d


def test_image_commands(capsys: pytest.CaptureFixture, images: Path, tmp_path: Path) -> None:
    codec = tmp_path / "codec.relc"
    code, out, _ = run(
        capsys,
        "image",
        "train-prior",
        images / "coffee.png",
        images / "chelsea.png",
        "-o",
        codec,
        "--bpp",
        "1.0",
        *TINY,
        "-q",
    )
    assert code == 0 and codec.exists() and "image codec" in out
    sha = load_codec(codec).sha256
    assert sha in out

    rel = tmp_path / "crop.relc"
    code, out, err = run(
        capsys,
        "image",
        "compress",
        images / "crop.png",
        "-o",
        rel,
        "--codec",
        codec,
        "--bpp",
        "1.5",
        *FAST,
        "--json",
    )
    assert code == 0, err
    res = json.loads(out)
    assert res["bytes"] == rel.stat().st_size <= 1.5 * 64 * 64 / 8
    assert res["bytes"] == res["header_bytes"] + res["blocks"] * 2

    png = tmp_path / "crop_out.png"
    code, out, err = run(capsys, "image", "decompress", rel, "-o", png, "--codec", codec)
    assert code == 0 and png.exists() and "64x64" in out, err
    # found by SHA-256 in a codec directory, without --codec
    code, _, err = run(capsys, "image", "decompress", rel, "-o", tmp_path / "b.png", "--codec-dir", tmp_path)
    assert code == 0, err
    assert (tmp_path / "b.png").read_bytes() == png.read_bytes()
    decoded = image.read_image(png)
    code, out, _ = run(
        capsys,
        "image",
        "compress",
        images / "crop.png",
        "-o",
        tmp_path / "c.relc",
        "--codec",
        codec,
        "--bpp",
        "1.5",
        *FAST,
        "--json",
    )
    assert json.loads(out)["psnr"] == pytest.approx(
        10 * np.log10(255**2 / np.mean((decoded.astype(float) - image.read_image(images / "crop.png")) ** 2))
    )


def test_image_command_errors(capsys: pytest.CaptureFixture, images: Path, tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).convert("CMYK").save(tmp_path / "cmyk.jpg")
    code, _, err = run(
        capsys, "image", "compress", tmp_path / "cmyk.jpg", "-o", tmp_path / "x.relc", "--bpp", "1"
    )
    assert code == 1 and "unsupported image mode" in err
    code, _, err = run(capsys, "image", "compress", images / "crop.png", "-o", tmp_path / "x.relc")
    assert code == 2 and "--bpp" in err
    code, _, err = run(
        capsys,
        "image",
        "compress",
        images / "crop.png",
        "-o",
        tmp_path / "x.relc",
        "--bpp",
        "1",
        "--beta",
        "1e-5",
    )
    assert code == 2
    code, _, err = run(
        capsys,
        "image",
        "compress",
        images / "crop.png",
        "-o",
        tmp_path / "x.relc",
        "--codec",
        tmp_path / "none.relc",
        "--bpp",
        "1",
    )
    assert code == 1 and "cannot read codec" in err
    (tmp_path / "bad.relc").write_bytes(b"\x89RELC\r\n\x1a" + bytes(40))
    code, _, err = run(capsys, "image", "decompress", tmp_path / "bad.relc", "-o", tmp_path / "x.png")
    assert code == 1 and "error" in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "x.relc").exists()
    code, _, _ = run(
        capsys,
        "image",
        "train-prior",
        images / "crop.png",
        "-o",
        tmp_path / "c.relc",
        "--bpp",
        "1",
        "--preset",
        "audio",
        "-q",
    )
    assert code == 2
    with pytest.raises(SystemExit) as e:
        main(["image", "--help"])
    assert e.value.code == 0
    assert "train-prior" in capsys.readouterr().out


# -- shipped codecs --------------------------------------------------------------------------


def test_shipped_codecs_load_and_compress(
    capsys: pytest.CaptureFixture, images: Path, tmp_path: Path
) -> None:
    codecs = shipped_codecs("image")
    assert len(codecs) >= 2
    for c in codecs:
        assert c.arch.patch == (64, 64) and c.kind == "image" and c.max_block_size == 25
    rates = [c.bits_per_sample() for c in codecs]
    assert rates == sorted(rates) and rates[0] < 0.5 < rates[-1]
    rel = tmp_path / "d.relc"
    code, _, err = run(capsys, "image", "compress", images / "crop.png", "-o", rel, "--bpp", "2", *FAST, "-q")
    assert code == 0, err
    code, _, err = run(capsys, "image", "decompress", rel, "-o", tmp_path / "d.png")  # found in the package
    assert code == 0, err
    # verify and inspect rebuild the file's base from the shipped codec it names
    code, _, err = run(capsys, "verify", rel)
    assert code == 0 and "OK" in err, err
    code, out, err = run(capsys, "inspect", rel)
    assert code == 0, err
    assert "compact signal file" in out and "(image)" in out and "CRC-32 verified" in out
    code, out, err = run(capsys, "inspect", rel, "--json")
    info = json.loads(out)
    assert info["verified"] and info["codec_kind"] == "image" and info["codec"] in {c.sha256 for c in codecs}
    # the relcode container: verify and inspect rebuild its base from the shipped codec it names
    rel2 = tmp_path / "d2.relc"
    st = EncodeSettings(steps=30, finetune_steps=10, rounds=3, pixels=64, container="relcode")
    image.compress(image.read_image(images / "crop.png"), rel2, bpp=2, settings=st)
    code, _, err = run(capsys, "verify", rel2)
    assert code == 0 and "OK" in err, err
    code, out, err = run(capsys, "inspect", rel2)
    assert "(attached)" in out and "compressed image: " in out and "b'" not in out
    code, out, err = run(capsys, "inspect", rel2, "--json")
    info = json.loads(out)
    assert info["base_attached"] and info["signal"]["codec_kind"] == "image"
    bad = bytearray(rel.read_bytes())
    bad[-40] ^= 1  # inside the last chunk: a CRC or digest failure, never "OK"
    (tmp_path / "bad.relc").write_bytes(bytes(bad))
    code, _, err = run(capsys, "verify", tmp_path / "bad.relc")
    assert code == 1 and "error" in err, err


# -- audio ------------------------------------------------------------------------------------


def speech(text: str, tmp: Path) -> np.ndarray:
    """Speech synthesised with espeak-ng, resampled to 16 kHz int16."""
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    out = tmp / "speech.wav"
    subprocess.run([exe, "-w", str(out), text], check=True, capture_output=True)
    rate, x = wavfile.read(out)
    g = np.gcd(rate, audio.RATE)
    y = resample_poly(x.astype(np.float64), audio.RATE // g, rate // g)
    return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def test_audio_compression_of_speech(tmp_path: Path) -> None:
    train = [
        speech("The quick brown fox jumps over the lazy dog.", tmp_path),
        speech("She sells sea shells by the sea shore.", tmp_path),
    ]
    test = speech("Relative entropy coding sends samples.", tmp_path)[:8000]
    arch = siren.preset("audio", patch=(400,), dim_hid=8, layers=3, dim_emb=8, max_freq=200.0)
    codec = audio.train_codec(train, kbps=8, arch=arch, crops=6, iterations=2, steps=8, device="cpu")
    codec.save(tmp_path / "a.relc")
    wav = tmp_path / "in.wav"
    audio.write_wav(wav, test)
    np.testing.assert_array_equal(audio.read_wav(wav), test)
    rel = tmp_path / "out.relc"
    rep = audio.compress(
        wav,
        rel,
        codec=codec,
        kbps=16,
        settings=EncodeSettings(steps=20, finetune_steps=6, rounds=2, pixels=100),
    )
    assert rep.bytes <= 16_000 * 0.5 / 8 and rep.decoded.dtype == np.int16 and rep.decoded.size == 8000
    np.testing.assert_array_equal(audio.decompress(rel, codec=tmp_path / "a.relc"), rep.decoded)
    np.testing.assert_array_equal(audio.decompress(rel), rep.decoded)  # codec found next to the file
    with pytest.raises(InputError, match="holds audio"):
        image.decompress(rel)


def test_audio_input_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import wave

    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(400))
    with wave.open(str(tmp_path / "8k.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(400))
    (tmp_path / "junk.wav").write_bytes(b"RIFF0000WAVE")
    for name in ("stereo.wav", "8k.wav", "junk.wav", "missing.wav"):
        with pytest.raises(InputError):
            audio.read_wav(tmp_path / name)
    code, _, err = run(
        capsys, "audio", "compress", tmp_path / "8k.wav", "-o", tmp_path / "x.relc", "--kbps", "8"
    )
    assert code == 1 and "16000 Hz" in err
