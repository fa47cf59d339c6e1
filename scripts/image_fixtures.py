#!/usr/bin/env python3
"""Writes the CraftImaging test fixtures into Tests/CraftImagingTests/Fixtures/.

Run by hand with the reference environment (never by `make test`):

    .venv-ref/bin/python scripts/image_fixtures.py

What it writes:
- PNG files made by a small PNG writer below (every colour type, bit depths 1-16, Adam7
  interlacing, all five row filters, palette with and without tRNS, colour-management chunks),
  so the expected samples are known exactly; Pillow must decode the 8-bit ones to the same values
  (checked here).
- JPEG files written by Pillow (baseline 4:2:0, progressive, 4:4:4, grayscale, CMYK); the expected
  samples are Pillow's own decode (libjpeg-turbo inside Pillow).
- Pillow resize results (`Image.resize(size, filter)`) and transformers' SigLIP preprocessing
  (`SiglipImageProcessorPil`) results.
- expected.json holding all expected values, with the package versions that made them.
"""

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, features
import transformers
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

OUT = Path(__file__).resolve().parent.parent / "Tests" / "CraftImagingTests" / "Fixtures"
rng = np.random.default_rng(20261126)

# ---------------------------------------------------------------------------------------------
# A minimal PNG writer (spec: https://www.w3.org/TR/png/), so fixtures cover what Pillow cannot
# write (16-bit RGB, Adam7, low bit depths, chosen filters).

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_row(row, bit_depth):
    """row: 1-D array of samples for one scanline."""
    if bit_depth == 16:
        return row.astype(">u2").tobytes()
    if bit_depth == 8:
        return row.astype(np.uint8).tobytes()
    per_byte = 8 // bit_depth
    out = bytearray()
    for start in range(0, len(row), per_byte):
        byte = 0
        group = row[start:start + per_byte]
        for i, v in enumerate(group):
            byte |= int(v) << (8 - bit_depth * (i + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(kind, raw, previous, bpp):
    out = bytearray()
    for i, x in enumerate(raw):
        a = raw[i - bpp] if i >= bpp else 0
        b = previous[i] if previous is not None else 0
        c = previous[i - bpp] if previous is not None and i >= bpp else 0
        predictor = [0, a, b, (a + b) // 2, paeth(a, b, c)][kind]
        out.append((x - predictor) & 0xFF)
    return bytes([kind]) + bytes(out)


def encode_pass(samples, bit_depth, channels, row_counter):
    """samples: [h, w, channels] integer array. Returns filtered bytes; filter type cycles 0-4."""
    h, w, _ = samples.shape
    if h == 0 or w == 0:
        return b""
    bpp = max(1, channels * bit_depth // 8)
    previous = None
    out = b""
    for y in range(h):
        raw = pack_row(samples[y].reshape(-1), bit_depth)
        out += filter_row(row_counter[0] % 5, raw, previous, bpp)
        row_counter[0] += 1
        previous = raw
    return out


def write_png(path, samples, color_type, bit_depth, interlace=False, palette=None, trns=None, extra=()):
    """samples: [h, w, channels] (palette indices for colour type 3)."""
    h, w, channels = samples.shape
    assert channels == CHANNELS[color_type]
    counter = [0]
    if interlace:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            data += encode_pass(samples[y0::dy, x0::dx], bit_depth, channels, counter)
    else:
        data = encode_pass(samples, bit_depth, channels, counter)
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 1 if interlace else 0))
    for kind, body in extra:
        png += chunk(kind, body)
    if palette is not None:
        png += chunk(b"PLTE", np.asarray(palette, dtype=np.uint8).tobytes())
    if trns is not None:
        png += chunk(b"tRNS", trns)
    compressed = zlib.compress(data, 9)
    # Two IDAT chunks, to exercise chunk boundaries inside the zlib stream.
    half = len(compressed) // 2
    png += chunk(b"IDAT", compressed[:half]) + chunk(b"IDAT", compressed[half:])
    png += chunk(b"IEND", b"")
    path.write_bytes(png)


# ---------------------------------------------------------------------------------------------
# Test pictures: smooth gradients plus noise, so resampling and JPEG have something to do.

def picture(h, w, channels, maximum=255):
    y, x = np.mgrid[0:h, 0:w]
    planes = []
    for c in range(channels):
        base = (np.sin(x / (2.0 + c) + c) + np.cos(y / (1.5 + c)) + 2) / 4
        noise = rng.random((h, w)) * 0.25
        planes.append(np.clip(base * 0.8 + noise, 0, 1))
    return np.rint(np.stack(planes, -1) * maximum).astype(np.int64)


def alpha_plane(h, w, maximum=255):
    y, x = np.mgrid[0:h, 0:w]
    a = np.rint((x + y) / (h + w - 2) * maximum).astype(np.int64)
    a[0, 0] = 0
    a[-1, -1] = maximum
    return a


expected = {
    "generator": "scripts/image_fixtures.py",
    "versions": {
        "pillow": PIL.__version__,
        "pillow_libjpeg_turbo": features.version("libjpeg_turbo"),
        "numpy": np.__version__,
        "transformers": transformers.__version__,
    },
    "png": [],
    "jpeg": [],
    "resize": [],
    "siglip": [],
}


def record_png(name, model, bit_depth, samples, pil_check=True):
    h, w, _ = samples.shape
    expected["png"].append({
        "file": name, "width": w, "height": h, "colorModel": model, "bitDepth": bit_depth,
        "samples": samples.reshape(-1).tolist(),
    })
    if pil_check:
        decoded = np.array(Image.open(OUT / name).convert({"gray": "L", "grayAlpha": "LA", "rgb": "RGB", "rgba": "RGBA"}[model]))
        assert np.array_equal(decoded.reshape(h, w, -1), samples.reshape(h, w, -1)), f"Pillow disagrees on {name}"


OUT.mkdir(parents=True, exist_ok=True)

# 8-bit gray, non-interlaced.
gray = picture(9, 13, 1)
write_png(OUT / "gray8.png", gray, 0, 8)
record_png("gray8.png", "gray", 8, gray)

# 1-bit gray: libpng expands 0/1 to 0/255.
bits = (rng.random((9, 13, 1)) > 0.5).astype(np.int64)
write_png(OUT / "gray1.png", bits, 0, 1)
record_png("gray1.png", "gray", 8, bits * 255)

# 4-bit gray, interlaced: samples scale by 17.
nibbles = rng.integers(0, 16, (9, 13, 1))
write_png(OUT / "gray4_interlaced.png", nibbles, 0, 4, interlace=True)
record_png("gray4_interlaced.png", "gray", 8, nibbles * 17)

# 16-bit gray with an sRGB chunk (decoded to the stored samples; the chunk is ignored).
gray16 = picture(9, 13, 1, 65535)
write_png(OUT / "gray16_srgb.png", gray16, 0, 16, extra=[(b"sRGB", b"\x00")])
record_png("gray16_srgb.png", "gray", 16, gray16, pil_check=False)

# Gray + alpha, 8 and 16 bit. 16-bit alpha images come out of libpng's simplified API premultiplied;
# Craft un-premultiplies them, so the test allows for that rounding (see DecodingTests).
graya = np.concatenate([picture(9, 13, 1), alpha_plane(9, 13)[..., None]], -1)
write_png(OUT / "graya8.png", graya, 4, 8)
record_png("graya8.png", "grayAlpha", 8, graya)
graya16 = np.concatenate([picture(9, 13, 1, 65535), alpha_plane(9, 13, 65535)[..., None]], -1)
write_png(OUT / "graya16.png", graya16, 4, 16)
record_png("graya16.png", "grayAlpha", 16, graya16, pil_check=False)

# RGB 8-bit, plain and interlaced (32x24 covers every Adam7 pass).
rgb = picture(9, 13, 3)
write_png(OUT / "rgb8.png", rgb, 2, 8)
record_png("rgb8.png", "rgb", 8, rgb)
rgb_big = picture(24, 32, 3)
write_png(OUT / "rgb8_interlaced.png", rgb_big, 2, 8, interlace=True)
record_png("rgb8_interlaced.png", "rgb", 8, rgb_big)

# RGB 8-bit with gAMA 1.0 and cHRM: the samples are returned as stored (no gamma conversion).
chrm = struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000)
write_png(OUT / "rgb8_gamma.png", rgb, 2, 8, extra=[(b"gAMA", struct.pack(">I", 100000)), (b"cHRM", chrm)])
record_png("rgb8_gamma.png", "rgb", 8, rgb)

# RGB 16-bit, exact.
rgb16 = picture(9, 13, 3, 65535)
write_png(OUT / "rgb16.png", rgb16, 2, 16)
record_png("rgb16.png", "rgb", 16, rgb16, pil_check=False)

# RGB with a tRNS colour key: becomes RGBA with alpha 0 where the colour matches.
key = rgb[4, 6].copy()
write_png(OUT / "rgb8_trns.png", rgb, 2, 8, trns=struct.pack(">HHH", *key.tolist()))
alpha = np.where((rgb == key).all(-1), 0, 255)
record_png("rgb8_trns.png", "rgba", 8, np.concatenate([rgb, alpha[..., None]], -1))

# RGBA 8-bit, and 16-bit interlaced (see the 16-bit alpha note above).
rgba = np.concatenate([picture(9, 13, 3), alpha_plane(9, 13)[..., None]], -1)
write_png(OUT / "rgba8.png", rgba, 6, 8)
record_png("rgba8.png", "rgba", 8, rgba)
rgba16 = np.concatenate([picture(9, 13, 3, 65535), alpha_plane(9, 13, 65535)[..., None]], -1)
write_png(OUT / "rgba16_interlaced.png", rgba16, 6, 16, interlace=True)
record_png("rgba16_interlaced.png", "rgba", 16, rgba16, pil_check=False)

# Palette: 8-bit indices without tRNS (-> RGB), 4-bit indices with tRNS (-> RGBA).
palette = rng.integers(0, 256, (16, 3))
indices = rng.integers(0, 16, (9, 13, 1))
write_png(OUT / "palette8.png", indices, 3, 8, palette=palette)
record_png("palette8.png", "rgb", 8, palette[indices[..., 0]])
trns = bytes([0, 64, 128, 200])
write_png(OUT / "palette4_trns.png", indices, 3, 4, palette=palette, trns=trns)
alphas = np.array(list(trns) + [255] * 12)
record_png("palette4_trns.png", "rgba", 8, np.concatenate([palette[indices[..., 0]], alphas[indices]], -1))

# ---------------------------------------------------------------------------------------------
# JPEG: Pillow writes, Pillow decodes; Craft must agree (libjpeg-turbo, islow IDCT, fancy upsampling).

jpeg_rgb = Image.fromarray(picture(25, 33, 3).astype(np.uint8), "RGB")
jpeg_gray = Image.fromarray(picture(25, 33, 1)[..., 0].astype(np.uint8), "L")
jpegs = [
    ("rgb_baseline.jpg", jpeg_rgb, dict(quality=85)),
    ("rgb_progressive.jpg", jpeg_rgb, dict(quality=80, progressive=True)),
    ("rgb_444.jpg", jpeg_rgb, dict(quality=90, subsampling=0)),
    ("rgb_422.jpg", jpeg_rgb, dict(quality=75, subsampling=1)),
    ("gray.jpg", jpeg_gray, dict(quality=85)),
]
for name, img, options in jpegs:
    img.save(OUT / name, "JPEG", **options)
    decoded = np.array(Image.open(OUT / name))
    h, w = decoded.shape[:2]
    model = "gray" if decoded.ndim == 2 else "rgb"
    expected["jpeg"].append({"file": name, "width": w, "height": h, "colorModel": model, "bitDepth": 8,
                             "samples": decoded.reshape(-1).tolist()})
jpeg_rgb.convert("CMYK").save(OUT / "cmyk.jpg", "JPEG", quality=85)

# ---------------------------------------------------------------------------------------------
# Resizing: Pillow's Image.resize on decoded fixtures.

FILTERS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
           "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}
resizes = [
    ("rgb8_interlaced.png", 13, 9, "bilinear"),
    ("rgb8_interlaced.png", 45, 31, "bilinear"),
    ("rgb8_interlaced.png", 20, 30, "bilinear"),
    ("rgb8_interlaced.png", 13, 9, "bicubic"),
    ("rgb8_interlaced.png", 45, 31, "bicubic"),
    ("rgb8_interlaced.png", 7, 5, "lanczos"),
    ("rgb8_interlaced.png", 10, 7, "box"),
    ("rgb8_interlaced.png", 40, 11, "hamming"),
    ("rgb8_interlaced.png", 32, 11, "bilinear"),
    ("rgb8_interlaced.png", 50, 20, "bicubic"),
    ("rgb8_interlaced.png", 33, 12, "bilinear"),
    ("rgb8_interlaced.png", 31, 25, "bicubic"),
    ("gray8.png", 7, 20, "bilinear"),
    ("rgba8.png", 29, 5, "bilinear"),
    ("rgba8.png", 6, 4, "bicubic"),
    ("graya8.png", 5, 17, "bilinear"),
]
for name, w, h, filt in resizes:
    out = np.array(Image.open(OUT / name).resize((w, h), FILTERS[filt]))
    expected["resize"].append({"file": name, "width": w, "height": h, "filter": filt,
                               "samples": out.reshape(-1).tolist()})

# Compositing over white and convert("RGB") dropping alpha.
composite = Image.alpha_composite(Image.new("RGBA", (13, 9), (255, 255, 255, 255)), Image.open(OUT / "rgba8.png").convert("RGBA"))
expected["compositeOverWhite"] = {"file": "rgba8.png", "samples": np.array(composite.convert("RGB")).reshape(-1).tolist()}
expected["convertRGB"] = {f: np.array(Image.open(OUT / f).convert("RGB")).reshape(-1).tolist()
                          for f in ["graya8.png", "rgba8.png", "palette4_trns.png", "gray8.png"]}

# ---------------------------------------------------------------------------------------------
# SigLIP preprocessing (transformers' PIL backend): convert_to_rgb, resize, rescale, normalize.

siglip_cases = [
    ("rgb8_interlaced.png", dict(size={"height": 12, "width": 16})),
    ("rgba8.png", dict(size={"height": 10, "width": 14})),
    ("gray8.png", dict(size={"height": 11, "width": 9})),
    ("rgb_baseline.jpg", dict(size={"height": 12, "width": 16})),
    ("rgb_baseline.jpg", dict(size={"height": 20, "width": 24}, resample=2,
                              image_mean=[0.48145466, 0.4578275, 0.40821073],
                              image_std=[0.26862954, 0.26130258, 0.27577711])),
]
for name, options in siglip_cases:
    processor = SiglipImageProcessorPil(**options)
    pixels = processor(images=Image.open(OUT / name), return_tensors="np")["pixel_values"][0]
    assert pixels.dtype == np.float32
    config = processor.to_dict()
    expected["siglip"].append({
        "file": name,
        "config": {k: config[k] for k in ["size", "resample", "do_resize", "do_rescale", "rescale_factor",
                                          "do_normalize", "image_mean", "image_std"]},
        "shape": list(pixels.shape),
        # Shortest decimal that round-trips to the same float32 (keeps the file small).
        "values": [float(np.format_float_positional(v, unique=True)) for v in pixels.reshape(-1)],
    })

(OUT / "expected.json").write_text(json.dumps(expected, separators=(",", ":")) + "\n")
total = sum(p.stat().st_size for p in OUT.iterdir())
print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, into {OUT}")
