"""Image compression with COMBINER: PNG in, a relcode file out, and back.

Images are cut into the codec's patches (64x64 for the shipped codecs), each represented by
a small variational SIREN; the patches are fitted and coded together. Decoding evaluates
the decoded networks with numpy only. Decoded images are 8-bit RGB.

Exactness: the decoded *weights* are the encoder's, bit for bit, on every machine (the file
records their SHA-256 and the decoder checks it). The pixels are computed from them by one
numpy float32 function that the encoder also uses for its reconstruction, so on the same
numpy build the decoded image equals the encoder's reconstruction exactly; a different
CPU's SIMD ``sin`` or BLAS kernel could, rarely, round a pixel to the neighbouring level.

Accepted inputs: 8-bit RGB, greyscale (``L``, coded as RGB) and palette images, and RGBA
images whose alpha channel is fully opaque; anything else (16-bit, CMYK, transparency) is
refused with an :class:`~relcode.errors.InputError` rather than silently changed.

>>> import numpy as np, relcode.inr.image as image
>>> image.check_image(np.zeros((4, 4, 3), np.uint8)).shape
(4, 4, 3)
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .codec import Codec, load_codec, nearest_codec, shipped_codecs
from .pipeline import EncodeReport, EncodeSettings, decode, encode
from .signals import MAX_PATCHES, from_patches, image_to_patches, random_crops, to_pixels

__all__ = [
    "check_image",
    "compress",
    "decompress",
    "default_architecture",
    "read_image",
    "train_codec",
    "write_png",
]


def check_image(image: Any) -> np.ndarray:
    """An (H, W, 3) uint8 array, or :class:`InputError`."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise InputError(f"images must be 8-bit (uint8), got {a.dtype}")
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] != 3:
        raise InputError(f"images must be (height, width, 3) RGB arrays, got shape {a.shape}")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise InputError(f"the image is empty ({a.shape[1]}x{a.shape[0]})")
    return np.ascontiguousarray(a)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB (see the module doc for accepted modes)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "P":
                im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
                mode = im.mode
            if mode == "RGBA":
                alpha = np.asarray(im.getchannel("A"))
                if alpha.min() < 255:
                    raise InputError(f"{path}: images with transparency are not supported")
                im = im.convert("RGB")
            elif mode == "L":
                im = im.convert("RGB")
            elif mode != "RGB":
                raise InputError(
                    f"{path}: unsupported image mode {mode!r} (8-bit RGB, greyscale or palette images only)"
                )
            return check_image(np.asarray(im))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"cannot read image {path}: {e}") from None


def write_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 3) -> None:
    """Writes (H, W, 3) uint8 as PNG, atomically. zlib level 3: about 7% larger than
    Pillow's default level 6 and four times faster, which is most of a decoder's time."""
    import io

    from PIL import Image

    from ..format import write_output

    buf = io.BytesIO()
    Image.fromarray(check_image(image)).save(buf, format="PNG", compress_level=compress_level)
    write_output(Path(path), buf.getvalue())


def _as_image(image: Any) -> np.ndarray:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    return check_image(image)


def default_codec(bits_per_pixel: float | None, pixels: int) -> Codec:
    """The shipped image codec whose nominal rate is closest (in log scale) to the message
    rate a whole-file target leaves after a ~330-byte header, among those that can reach it."""
    return nearest_codec(shipped_codecs("image"), bits_per_pixel, pixels, "image")


def compress(
    image: Any,
    dest: Any,
    *,
    codec: Codec | str | os.PathLike | None = None,
    bpp: float | None = None,
    beta: float | None = None,
    blocks: int | None = None,
    settings: EncodeSettings | None = None,
    progress: bool = False,
) -> EncodeReport:
    """Compresses an image (a path or an (H, W, 3) uint8 array) into ``dest``. Rate:
    ``bpp`` bits per pixel for the whole file, or ``beta``, or at most ``blocks`` messages;
    the codec defaults to the shipped one nearest the rate. The report's ``decoded`` is the
    decoded image."""
    img = _as_image(image)
    if codec is None:
        codec = default_codec(bpp, img.shape[0] * img.shape[1])
    elif not isinstance(codec, Codec):
        codec = load_codec(codec)
    if codec.kind != "image" or codec.arch.dim_out != 3:
        raise InputError(f"the codec codes {codec.kind} signals, not RGB images")
    patches = image_to_patches(img, codec.arch.patch)
    rep = encode(
        codec,
        patches,
        dest,
        bits_per_sample=bpp,
        beta=beta,
        blocks=blocks,
        settings=settings,
        progress=progress,
    )
    rep.decoded = to_pixels(from_patches(rep.reconstruction, patches.grid, codec.arch.patch, patches.shape))
    return rep


def decompress(source: Any, *, codec: Codec | str | os.PathLike | None = None, codec_dirs=()) -> np.ndarray:
    """Decodes a compressed image to (H, W, 3) uint8."""
    if codec is not None and not isinstance(codec, Codec):
        codec = load_codec(codec)
    sf, recon = decode(source, codec=codec, codec_dirs=codec_dirs)
    if sf.codec.kind != "image":
        raise InputError("this file holds audio, not an image (use relcode audio decompress)")
    arch = sf.codec.arch
    grid = tuple(math.ceil(s / p) for s, p in zip(sf.shape, arch.patch))
    return to_pixels(from_patches(recon, grid, arch.patch, sf.shape))


def default_architecture(bpp: float):
    """The 64x64-patch network for a nominal message rate: RECOMBINER's 3,267-parameter
    SIREN (32 hidden units) from 0.75 bpp, 24 hidden units (2,067 parameters) from 0.4 bpp
    and 16 (1,123) below, so that blocks of at most 25 parameters still reach the rate
    (a network of N parameters needs at least ceil(N / 25) blocks of 16 bits per patch)."""
    from .siren import preset

    return preset("patch64", dim_hid=16 if bpp < 0.4 else 24 if bpp < 0.75 else 32)


def train_codec(
    images: list[Any],
    *,
    bpp: float,
    arch: Any = None,
    crops: int = 64,
    seed: int = 0,
    progress: Any = None,
    **kwargs: Any,
) -> Codec:
    """Learns an image codec for ``bpp`` message bits per pixel from ``crops`` random
    patch-sized crops of training images (paths or uint8 arrays). ``arch`` is a preset name
    or an :class:`~relcode.inr.siren.Architecture` (default: :func:`default_architecture`);
    other arguments go to :func:`relcode.inr.train.train_codec`."""
    from .siren import Architecture, preset
    from .train import train_codec as _train

    if arch is None:
        arch = default_architecture(bpp)
    a = preset(arch) if isinstance(arch, str) else arch
    if not isinstance(a, Architecture) or a.kind != "image":
        raise InputError("an image codec needs an image architecture")
    imgs = [_as_image(i) for i in images]
    if crops < 1 or crops > MAX_PATCHES * 4:
        raise InputError(f"crops must be in 1..{MAX_PATCHES * 4}")
    values = random_crops(imgs, crops, a.patch, seed=seed)
    info = {"training_images": len(imgs)}
    info.update(kwargs.pop("info", {}) or {})
    return _train(a, values, bits_per_sample=bpp, seed=seed, progress=progress, info=info, **kwargs)
