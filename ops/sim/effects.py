"""Deterministic Pillow edits keyed on words in the prompt."""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image, ImageChops, ImageDraw, ImageEnhance, ImageFilter, ImageOps

Effect = Callable[[Image.Image, random.Random], Image.Image]


def _rgb(image: Image.Image) -> Image.Image:
    return image.convert("RGB")


def night(image: Image.Image, rng: random.Random) -> Image.Image:
    base = ImageEnhance.Brightness(_rgb(image)).enhance(0.35)
    blue = Image.new("RGB", base.size, (20, 30, 90))
    out = Image.blend(base, blue, 0.35)
    draw = ImageDraw.Draw(out)
    width, height = out.size
    for _ in range(max(20, width * height // 6000)):
        x, y = rng.randrange(width), rng.randrange(max(1, height // 2))
        draw.point((x, y), fill=(255, 255, 230))
    return _vignette(out, 0.6)


def sketch(image: Image.Image, rng: random.Random) -> Image.Image:
    """Dark outlines on white paper, with pencil hatching over the darker half of the tones."""
    gray = ImageOps.grayscale(image).filter(ImageFilter.SMOOTH_MORE)
    edges = ImageOps.autocontrast(gray.filter(ImageFilter.FIND_EDGES)).filter(ImageFilter.MaxFilter(3))
    lines = ImageOps.invert(edges.point(lambda v: 255 if v > 40 else v * 4))
    width, height = gray.size
    hatch = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(hatch)
    step = max(5, min(width, height) // 90)
    for offset in range(-height, width, step):
        draw.line((offset, height, offset + height, 0), fill=110, width=1)
    shade = gray.point(lambda v: 255 if v > 150 else 0)
    shaded = Image.composite(Image.new("L", (width, height), 250), hatch, shade)
    return ImageChops.multiply(lines, shaded).convert("RGB")


def vintage(image: Image.Image, rng: random.Random) -> Image.Image:
    sepia = ImageOps.colorize(ImageOps.grayscale(image), black=(40, 26, 13), white=(255, 240, 192))
    width, height = sepia.size
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height)).convert("RGB")
    grained = Image.blend(sepia, ImageChops.multiply(sepia, noise), 0.12)
    return _vignette(ImageEnhance.Contrast(grained).enhance(0.85), 0.45)


def rain(image: Image.Image, rng: random.Random) -> Image.Image:
    out = ImageEnhance.Brightness(_rgb(image)).enhance(0.75)
    out = Image.blend(out, Image.new("RGB", out.size, (90, 100, 120)), 0.2)
    streaks = Image.new("L", out.size, 0)
    draw = ImageDraw.Draw(streaks)
    width, height = out.size
    length = max(8, height // 25)
    for _ in range(max(60, width * height // 2500)):
        x, y = rng.randrange(width), rng.randrange(height)
        draw.line((x, y, x - length // 3, y + length), fill=200, width=1)
    streaks = streaks.filter(ImageFilter.GaussianBlur(0.6))
    return Image.composite(Image.new("RGB", out.size, (210, 220, 235)), out, streaks)


def black_and_white(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.autocontrast(ImageOps.grayscale(image)).convert("RGB")


def warm(image: Image.Image, rng: random.Random) -> Image.Image:
    out = ImageEnhance.Brightness(_rgb(image)).enhance(1.12)
    out = Image.blend(out, Image.new("RGB", out.size, (255, 170, 60)), 0.22)
    return ImageEnhance.Color(out).enhance(1.3)


def stylize(image: Image.Image, rng: random.Random) -> Image.Image:
    """For prompts no keyword matches: a posterized pop-art look with its colours rotated."""
    red, green, blue = ImageOps.posterize(_rgb(image), 2).split()
    return Image.merge("RGB", (blue, red, green)).filter(ImageFilter.EDGE_ENHANCE_MORE)


def _vignette(image: Image.Image, strength: float) -> Image.Image:
    width, height = image.size
    mask = Image.radial_gradient("L").resize((width, height))
    dark = ImageEnhance.Brightness(image).enhance(1 - strength)
    return Image.composite(dark, image, mask)


#: Keywords (lower case) and the effect each selects; the first match in this order wins.
KEYWORDS: tuple[tuple[tuple[str, ...], Effect], ...] = (
    (("night", "nighttime", "midnight", "dark"), night),
    (("sketch", "pencil", "drawing", "charcoal"), sketch),
    (("vintage", "film", "retro", "old photo", "sepia"), vintage),
    (("rain", "rainy", "storm"), rain),
    (("black and white", "black-and-white", "grayscale", "greyscale", "monochrome", "b&w"), black_and_white),
    (("warm", "sunny", "summer", "golden", "sunset"), warm),
)


def choose(prompt: str) -> tuple[str, Effect]:
    text = prompt.lower()
    for words, effect in KEYWORDS:
        if any(word in text for word in words):
            return effect.__name__, effect
    return "stylize", stylize


def intensity(prompt: str, input_fidelity: str | None) -> float:
    """How strongly to apply the effect: low strength or high input fidelity preserve more."""
    text = prompt.lower()
    value = 0.85
    if text.startswith("make only the change described below"):
        value = 0.5
    elif text.startswith("apply the change described below boldly"):
        value = 1.0
    if input_fidelity == "high":
        value = min(value, 0.6)
    return value


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop `image` to fill exactly `size`."""
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS)


def apply(
    image: Image.Image,
    prompt: str,
    size: tuple[int, int],
    *,
    seed: int,
    mask: Image.Image | None = None,
    input_fidelity: str | None = None,
    transparent: bool = False,
) -> Image.Image:
    """The edited output: the effect the prompt names, blended by strength, limited to the
    mask's transparent area, at `size`."""
    rng = random.Random(seed)
    base = image.convert("RGBA")
    _, effect = choose(prompt)
    edited = effect(base.convert("RGB"), rng).convert("RGBA")
    out = Image.blend(base, edited, intensity(prompt, input_fidelity))
    if mask is not None:
        alpha = mask.convert("RGBA").getchannel("A").resize(base.size)
        editable = alpha.point(lambda a: 255 if a == 0 else 0)
        out = Image.composite(out, base, editable)
    out = cover(out, size)
    if not transparent:
        out = out.convert("RGB")
    return out
