"""Image factories for tests."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageOps


def scene(width: int = 640, height: int = 480, fmt: str = "PNG", **save: object) -> bytes:
    """A small picture with shapes, so edits change something visible."""
    image = Image.new("RGB", (width, height), (110, 160, 215))
    draw = ImageDraw.Draw(image)
    draw.ellipse((width // 4, height // 5, 3 * width // 4, 4 * height // 5), fill=(235, 190, 70))
    draw.rectangle((0, 3 * height // 4, width, height), fill=(60, 130, 60))
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def mask(width: int = 640, height: int = 480, *, alpha: bool = True) -> bytes:
    """A mask whose left half is transparent (edit there) and right half opaque (keep)."""
    if not alpha:
        image = Image.new("RGB", (width, height), (0, 0, 0))
    else:
        image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
        ImageDraw.Draw(image).rectangle((0, 0, width // 2, height), fill=(0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def mean_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute per-channel difference after scaling b to a's size (0..255)."""
    a = a.convert("RGB")
    b = b.convert("RGB").resize(a.size)
    pa, pb = a.tobytes(), b.tobytes()
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop to `size` (how outputs are framed from sources)."""
    return ImageOps.fit(image.convert("RGB"), size, Image.Resampling.LANCZOS)
