"""relcode.inr, the file side: codec files, signal files, whole-image compression with exact
decoding, rate targets, header size, and bad input (modes, sizes, codecs, corrupt files).

The codec here is tiny (16x16 patches, 8 hidden units) and trained for a few steps on
crops of real sample images; the point is exactness and errors, not quality."""

from __future__ import annotations

import dataclasses
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("PIL")

import relcode
from relcode.errors import ChecksumError, FormatError, InputError
from relcode.inr import Codec, EncodeSettings, files, image, load_codec, pipeline, siren
from relcode.inr.codec import find_codec

ROOT = Path(__file__).resolve().parents[2]
ARCH = siren.Architecture(dim_in=2, dim_out=3, dim_emb=8, dim_hid=8, layers=3, patch=(16, 16), max_freq=16.0)
FAST = EncodeSettings(steps=30, finetune_steps=10, rounds=3, pixels=64)


def sample_image(name: str = "astronaut") -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, :3])


@pytest.fixture(scope="module")
def codec_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    c = image.train_codec(
        [sample_image("coffee"), sample_image("chelsea")],
        bpp=1.0,
        arch=ARCH,
        crops=6,
        iterations=2,
        steps=10,
        device="cpu",
    )
    path = tmp_path_factory.mktemp("codecs") / "tiny.relc"
    c.save(path)
    return path


@pytest.fixture(scope="module")
def codec(codec_path: Path) -> Codec:
    return load_codec(codec_path)


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    return sample_image()[200:248, 180:244].copy()  # 48x64: 3x4 patches


@pytest.fixture(scope="module")
def coded(codec: Codec, crop: np.ndarray) -> tuple[bytes, pipeline.EncodeReport]:
    buf = io.BytesIO()
    rep = image.compress(crop, buf, codec=codec, bpp=3.0, settings=FAST)
    return buf.getvalue(), rep


# -- codec files -------------------------------------------------------------------------


def test_codec_round_trip_is_exact(codec_path: Path, codec: Codec) -> None:
    c2 = Codec.from_bytes(codec.to_bytes())
    for name in ("prior_mean", "prior_std", "kl_bits"):
        np.testing.assert_array_equal(getattr(c2, name).view(np.uint32), getattr(codec, name).view(np.uint32))
    assert c2.arch == ARCH and c2.beta == codec.beta and c2.info == codec.info
    assert codec.to_bytes() == codec_path.read_bytes()  # deterministic bytes
    info = relcode.inspect(codec_path)
    assert not info["messages"] and {t["name"] for t in info["tensors"]} == {"kl", "w"}


def test_codec_lookup_by_sha256(codec_path: Path, codec: Codec, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_codec(codec.sha256, [codec_path.parent]).sha256 == codec.sha256
    with pytest.raises(InputError, match="not found"):
        find_codec("00" * 32, [codec_path.parent])
    monkeypatch.setenv("RELCODE_CODEC_PATH", str(codec_path.parent))
    assert find_codec(codec.sha256).sha256 == codec.sha256


# -- signal files ------------------------------------------------------------------------


def test_signal_base_is_deterministic_and_tiles_the_prior(codec: Codec) -> None:
    a, b = files.signal_base(codec, 5, 1.0), files.signal_base(codec, 5, 1.0)
    assert a.data == b.data and a.sha256 == b.sha256
    np.testing.assert_array_equal(a.p_mean.reshape(5, -1)[3], codec.prior_mean)
    assert files.signal_base(codec, 5, 2.0).num_blocks > a.num_blocks
    sizes = a.blocks.sizes
    assert sizes.max() <= codec.max_block_size and sizes.sum() == 5 * ARCH.num_params


def test_scale_for_blocks_respects_the_bound(codec: Codec) -> None:
    for target in (50, 100, 400):
        s = files.scale_for_blocks(codec, 6, target)
        assert files.count_blocks(codec, 6, s) <= target
    with pytest.raises(InputError, match="too low"):
        files.scale_for_blocks(codec, 6, 3)


def test_compress_decodes_bit_for_bit(coded, codec: Codec, crop: np.ndarray) -> None:
    data, rep = coded
    dec = image.decompress(data, codec=codec)
    np.testing.assert_array_equal(dec, rep.decoded)
    assert dec.shape == crop.shape and dec.dtype == np.uint8
    sf, recon = pipeline.decode(data, codec=codec)
    np.testing.assert_array_equal(recon.view(np.uint32), rep.reconstruction.view(np.uint32))
    np.testing.assert_array_equal(sf.weights.view(np.uint32), rep.weights.view(np.uint32))
    assert files.is_compact(data)
    # the same messages in a relcode file, decoded by the format's reader: the same weights
    head = files.parse_compact(data, codec.arch.dim_in)
    base = files.signal_base(codec, 12, rep.scale)
    bits = int(codec.bits)
    msgs = files._unpack(data[head["messages_at"] : -4], base.num_blocks, bits)
    buf = io.BytesIO()
    frep = files.write_signal(buf, codec, base, crop.shape[:2], msgs, head["seed"])
    relcode.verify(buf.getvalue(), base=base.data)
    np.testing.assert_array_equal(frep.decoded["w"].view(np.uint32), rep.weights.view(np.uint32))
    sf2 = files.read_signal(buf.getvalue(), codec=codec)
    np.testing.assert_array_equal(sf2.weights.view(np.uint32), rep.weights.view(np.uint32))


def test_the_relcode_container_still_reads_and_writes(codec: Codec, crop: np.ndarray) -> None:
    buf = io.BytesIO()
    st = dataclasses.replace(FAST, container="relcode")
    rep = image.compress(crop, buf, codec=codec, bpp=3.0, settings=st)
    data = buf.getvalue()
    assert not files.is_compact(data) and 250 < rep.header_bytes < 400
    assert rep.header_bytes == pipeline.header_bytes(
        codec, crop.shape[:2], 12, rep.scale, container="relcode"
    )
    relcode.verify(data, base=files.signal_base(codec, 12, rep.scale).data)
    np.testing.assert_array_equal(image.decompress(data, codec=codec), rep.decoded)


def test_file_size_is_header_plus_16_bits_per_block(coded, codec: Codec, crop: np.ndarray) -> None:
    data, rep = coded
    assert len(data) == rep.bytes <= 3.0 * crop.shape[0] * crop.shape[1] / 8
    assert rep.message_bits == 16 * rep.blocks
    assert rep.bytes == rep.header_bytes + 2 * rep.blocks
    assert rep.header_bytes <= 40  # magic, version, codec id, shape, seed, scale, CRC-32
    assert rep.header_bytes == pipeline.header_bytes(codec, crop.shape[:2], 12, rep.scale)
    assert math.floor(3.0 * crop.shape[0] * crop.shape[1] / 8) - rep.bytes < 2  # the rate is met to a block


def test_same_inputs_give_the_same_file(codec: Codec, crop: np.ndarray) -> None:
    a, b = io.BytesIO(), io.BytesIO()
    image.compress(crop, a, codec=codec, bpp=2.0, settings=FAST)
    image.compress(crop, b, codec=codec, bpp=2.0, settings=FAST)
    assert a.getvalue() == b.getvalue()


def test_beta_and_nominal_rates(codec: Codec, crop: np.ndarray) -> None:
    lo, hi = io.BytesIO(), io.BytesIO()
    r1 = image.compress(crop, lo, codec=codec, beta=1e-3, settings=FAST)
    r2 = image.compress(crop, hi, codec=codec, beta=1e-6, settings=FAST)
    assert r1.blocks < r2.blocks
    np.testing.assert_array_equal(image.decompress(hi.getvalue(), codec=codec), r2.decoded)
    r3 = image.compress(crop, io.BytesIO(), codec=codec, settings=FAST)  # the codec's own rate
    assert r3.scale == 1.0


def test_decoding_does_not_import_torch(coded, codec_path: Path, tmp_path: Path) -> None:
    data, rep = coded
    f = tmp_path / "x.relc"
    f.write_bytes(data)
    code = (
        "import sys, numpy as np; from relcode.inr import image; "
        f"x = image.decompress({str(f)!r}, codec={str(codec_path)!r}); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.stdout.buffer.write(x.tobytes())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        env={"PYTHONPATH": str(ROOT / "python"), "OMP_NUM_THREADS": "1"},
    ).stdout
    assert out == rep.decoded.tobytes()


# -- bad input ----------------------------------------------------------------------------


def test_unsupported_images(tmp_path: Path, codec: Codec) -> None:
    from PIL import Image

    rgb = sample_image()[:20, :20]
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.tiff")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 200).save(tmp_path / "deep.png")
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    for name, msg in [
        ("cmyk.tiff", "mode"),
        ("deep.png", "mode"),
        ("alpha.png", "transparency"),
        ("junk.png", "cannot read"),
        ("missing.png", "cannot read"),
    ]:
        with pytest.raises(InputError, match=msg):
            image.read_image(tmp_path / name)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    assert image.read_image(tmp_path / "grey.png").shape == (20, 20, 3)
    with pytest.raises(InputError, match="uint8"):
        image.compress(rgb.astype(np.float32), io.BytesIO(), codec=codec, bpp=2)
    with pytest.raises(InputError, match="empty"):
        image.compress(np.zeros((0, 4, 3), np.uint8), io.BytesIO(), codec=codec, bpp=2)
    with pytest.raises(InputError, match="patches"):
        image.compress(np.zeros((16 * 33, 16 * 32, 3), np.uint8), io.BytesIO(), codec=codec, bpp=2)


def test_rate_errors(codec: Codec, crop: np.ndarray) -> None:
    with pytest.raises(InputError, match="header"):
        image.compress(crop, io.BytesIO(), codec=codec, bpp=0.05)  # 19 bytes: less than the header
    with pytest.raises(InputError, match="one of"):
        pipeline.encode(
            codec, image.image_to_patches(crop, (16, 16)), io.BytesIO(), bits_per_sample=1, beta=1
        )
    with pytest.raises(InputError, match="beta"):
        image.compress(crop, io.BytesIO(), codec=codec, beta=-1.0)


def test_missing_and_mismatched_codecs(coded, codec: Codec, tmp_path: Path) -> None:
    data, _ = coded
    other = Codec(ARCH, codec.prior_mean, codec.prior_std * 2, codec.kl_bits, beta=1e-5, bits_per_patch=256)
    other.save(tmp_path / "other.relc")
    with pytest.raises(InputError, match="not the given codec"):
        image.decompress(data, codec=other)
    with pytest.raises(InputError, match="not found"):
        image.decompress(data, codec_dirs=[tmp_path])
    with pytest.raises(InputError, match="cannot read codec"):
        image.decompress(data, codec=tmp_path / "nope.relc")
    with pytest.raises(FormatError, match=r"not a relcode INR codec|compressed signal|not a relcode file"):
        Codec.from_bytes(data)
    with pytest.raises(FormatError, match="not a compressed INR signal"):
        image.decompress(codec.to_bytes(), codec=codec)


def test_corrupt_files_are_refused(coded, codec: Codec, rng: np.random.Generator) -> None:
    data, rep = coded
    with pytest.raises(FormatError):
        image.decompress(data[:-20], codec=codec)
    with pytest.raises(FormatError):
        image.decompress(data[:100], codec=codec)
    with pytest.raises(FormatError):
        image.decompress(b"", codec=codec)
    refused = 0
    for _ in range(40):
        b = bytearray(data)
        i = int(rng.integers(0, len(b)))
        b[i] ^= 1 << int(rng.integers(0, 8))
        try:
            out = image.decompress(bytes(b), codec=codec)
        except (FormatError, InputError) as e:
            refused += 1
            assert isinstance(e, (FormatError, ChecksumError, InputError))
        else:  # only a change the format cannot see could decode, and then it must be exact
            np.testing.assert_array_equal(out, rep.decoded)
    assert refused >= 38


def test_png_round_trip(tmp_path: Path, crop: np.ndarray) -> None:
    image.write_png(tmp_path / "a.png", crop)
    np.testing.assert_array_equal(image.read_image(tmp_path / "a.png"), crop)
