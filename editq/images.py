"""Source images, masks and outputs, checked and shaped with Pillow.

Accepted as they are: PNG, JPEG, WebP (what the GPT Image edit models take). A multi-picture
JPEG (MPO, as phone cameras write) is stored as its primary picture, re-encoded as JPEG. Converted to PNG
before storage: single-frame GIF, BMP and TIFF. Refused with `unsupported_image_format`:
HEIC/HEIF, AVIF and anything else, and animated images (`animated_image`). A JPEG or WebP with an
EXIF orientation is turned upright and stored re-encoded, so every later step sees the pixels the
way the client's viewer does.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from editq.errors import InvalidRequest, PayloadTooLarge, UnsupportedMedia
from editq.options import cropped_dimensions

ACCEPTED = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
CONVERTED = ("GIF", "BMP", "TIFF")
#: Pillow reports a multi-picture JPEG (MPO) as its own format; its primary picture is accepted.
OPENED = (*ACCEPTED, *CONVERTED)
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
#: Leading bytes of formats Pillow cannot open here, so the refusal can name them.
_SIGNATURES = (
    (b"ftypheic", "HEIC"),
    (b"ftypheix", "HEIC"),
    (b"ftyphevc", "HEIC"),
    (b"ftypmif1", "HEIF"),
    (b"ftypmsf1", "HEIF"),
    (b"ftypavif", "AVIF"),
)
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class SourceImage:
    """A checked image, as it will be stored and sent."""

    data: bytes
    sha256: str
    content_type: str
    width: int
    height: int
    has_alpha: bool
    converted_from: str | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _named_format(data: bytes) -> str | None:
    head = data[:32]
    for signature, name in _SIGNATURES:
        if signature in head:
            return name
    return None


def _open(data: bytes, param: str, max_pixels: int) -> Image.Image:
    if not data:
        raise InvalidRequest("image_empty", f"{param} is an empty file", param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=OPENED)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidRequest(
            "image_too_many_pixels", f"{param} has more than {max_pixels} pixels", param
        ) from None
    except UnidentifiedImageError:
        named = _named_format(data)
        if named:
            raise UnsupportedMedia(
                "unsupported_image_format",
                f"{param} is {named}; convert it to PNG, JPEG or WebP first",
                param,
            ) from None
        raise InvalidRequest(
            "invalid_image", f"{param} is not an image (PNG, JPEG or WebP expected)", param
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequest("image_corrupt", f"{param} cannot be read: {exc}", param) from None
    if image.width < 1 or image.height < 1:
        raise InvalidRequest("image_corrupt", f"{param} has no pixels", param)
    if image.width * image.height > max_pixels:
        raise InvalidRequest(
            "image_too_many_pixels",
            f"{param} is {image.width}x{image.height}; at most {max_pixels} pixels are accepted",
            param,
        )
    return image


def _load(image: Image.Image, param: str) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            image.load()
    except (OSError, SyntaxError, ValueError, EOFError, Warning) as exc:
        text = str(exc)
        if "truncated" in text or isinstance(exc, EOFError):
            raise InvalidRequest(
                "image_truncated", f"{param} is truncated: the file ends before the image does", param
            ) from None
        raise InvalidRequest("image_corrupt", f"{param} is corrupt: {text}", param) from None


def _alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )


def _encode_png(image: Image.Image) -> bytes:
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        image = image.convert("RGBA" if _alpha(image) else "RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _source(data: bytes, content_type: str, image: Image.Image, converted: str | None) -> SourceImage:
    return SourceImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type=content_type,
        width=image.width,
        height=image.height,
        has_alpha=_alpha(image),
        converted_from=converted,
    )


#: Where a scan's entropy-coded data ends: a 0xFF that is neither a stuffed 0xFF00 nor a
#: restart marker.
_SCAN_END = re.compile(rb"\xff[^\x00\xd0-\xd7]")
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


def _jpeg_structure(data: bytes, param: str) -> None:
    """Walk a JPEG's segments from SOI to EOI without decoding it: every segment within the
    file, every scan's coded data ending at a marker, an end-of-image marker at the end.
    A file cut short is `image_truncated`; a broken one is `image_corrupt`."""
    truncated = InvalidRequest(
        "image_truncated", f"{param} is truncated: the file ends before the image does", param
    )
    size, pos, scans = len(data), 2, 0
    while True:
        if pos + 2 > size:
            raise truncated
        marker = data[pos + 1]
        if data[pos] != 0xFF or marker in (0x00, 0xD8):
            raise InvalidRequest("image_corrupt", f"{param} is corrupt: no JPEG marker at byte {pos}", param)
        if marker == 0xD9:
            if scans:
                return
            raise InvalidRequest("image_corrupt", f"{param} is corrupt: it ends before any image data", param)
        if marker == 0xFF or marker in _STANDALONE:
            pos += 1 if marker == 0xFF else 2
            continue
        if pos + 4 > size:
            raise truncated
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if length < 2:
            raise InvalidRequest(
                "image_corrupt", f"{param} is corrupt: a bad segment length at byte {pos}", param
            )
        pos += 2 + length
        if pos > size:
            raise truncated
        if marker == 0xDA:  # start of scan: its coded data runs to the next marker
            scans += 1
            found = _SCAN_END.search(data, pos)
            if found is None:
                raise truncated
            pos = found.start()


def _plain_jpeg(data: bytes, image: Image.Image, param: str) -> SourceImage:
    """An upright JPEG, stored as it came: its header was read by Pillow, its structure is
    walked to the end (`_jpeg_structure`) instead of decoding every block. A decode refuses no
    more: libjpeg only warns about damaged coded data, and Pillow ignores its warnings."""
    _jpeg_structure(data, param)
    return SourceImage(
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        content_type="image/jpeg",
        width=image.width,
        height=image.height,
        has_alpha=False,
    )


def check_image(data: bytes, *, param: str, max_bytes: int, max_pixels: int) -> SourceImage:
    """A source image ready to store, or a specific refusal."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            "image_too_large", f"{param} is {len(data)} bytes; the limit is {max_bytes}", param
        )
    image = _open(data, param, max_pixels)
    fmt = image.format or ""
    if fmt != "MPO" and getattr(image, "n_frames", 1) > 1:
        raise UnsupportedMedia(
            "animated_image", f"{param} has several frames; send a single still image", param
        )
    if (
        fmt == "JPEG"
        and image.mode in ("L", "RGB")
        and image.getexif().get(_EXIF_ORIENTATION, 1) in (1, None)
    ):
        return _plain_jpeg(data, image, param)
    _load(image, param)
    if fmt in CONVERTED:
        return _source(_encode_png(image), "image/png", image, fmt.lower())
    if image.mode == "CMYK" or (fmt in ("JPEG", "MPO") and image.mode not in ("L", "RGB")):
        return _source(_encode_png(ImageOps.exif_transpose(image)), "image/png", image, fmt.lower())
    orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in (1, None) and fmt != "MPO":
        return _source(data, ACCEPTED[fmt], image, None)
    # Turn it upright, or keep only the primary picture of a multi-picture JPEG (phone cameras
    # append depth maps and previews), re-encoding once.
    upright = ImageOps.exif_transpose(image)
    out = io.BytesIO()
    if fmt in ("JPEG", "MPO"):
        upright.save(out, format="JPEG", quality=95)
        return _source(out.getvalue(), "image/jpeg", upright, "mpo" if fmt == "MPO" else None)
    if fmt == "WEBP":
        upright.save(out, format="WEBP", lossless=True)
    else:
        upright.save(out, format="PNG")
    return _source(out.getvalue(), ACCEPTED[fmt], upright, None)


def check_mask(data: bytes, *, first_image: tuple[int, int], max_bytes: int, max_pixels: int) -> SourceImage:
    """A mask: a PNG with an alpha channel, the size of the first image."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            "mask_too_large", f"mask is {len(data)} bytes; the limit is {max_bytes}", "mask"
        )
    image = _open(data, "mask", max_pixels)
    if image.format != "PNG":
        raise InvalidRequest("mask_not_png", "mask must be a PNG with an alpha channel", "mask")
    _load(image, "mask")
    if not _alpha(image):
        raise InvalidRequest(
            "mask_without_alpha",
            "mask has no alpha channel; fully transparent pixels mark where to edit",
            "mask",
        )
    return check_mask_size(_source(data, "image/png", image, None), first_image)


def check_mask_size(mask: SourceImage, first_image: tuple[int, int]) -> SourceImage:
    if mask.size != first_image:
        raise InvalidRequest(
            "mask_size_mismatch",
            f"mask is {mask.width}x{mask.height} but the first image is {first_image[0]}x{first_image[1]}",
            "mask",
        )
    return mask


@dataclass(frozen=True)
class Output:
    """One finished output image."""

    data: bytes
    content_type: str
    width: int
    height: int


def inspect_output(data: bytes, max_pixels: int = 64_000_000) -> Output:
    """Check an image the provider returned (format, size, structure) and read its dimensions.
    Pixels are decoded only when the output is reshaped."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=tuple(ACCEPTED))
            if image.width * image.height > max_pixels:
                raise ValueError("output too large")
            fmt, size = image.format or "PNG", image.size
            image.verify()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the provider returned an unreadable image: {exc}") from exc
    return Output(data, ACCEPTED[fmt], size[0], size[1])


def shape_output(
    output: Output,
    *,
    crop_ratio: tuple[int, int] | None,
    resize_to: tuple[int, int] | None,
    output_format: str,
    compression: int | None,
) -> Output:
    """Crop (centred) to the asked ratio and resize to the asked dimensions, re-encoding once."""
    if crop_ratio is None and resize_to is None:
        return output
    image: Image.Image = Image.open(io.BytesIO(output.data))
    image.load()
    if crop_ratio is not None:
        width, height = cropped_dimensions(image.width, image.height, crop_ratio)
        if (width, height) != image.size:
            left = (image.width - width) // 2
            top = (image.height - height) // 2
            image = image.crop((left, top, left + width, top + height))
    if resize_to is not None and resize_to != image.size:
        image = image.resize(resize_to, Image.Resampling.LANCZOS)
    return encode(image, output_format, compression)


def encode(image: Image.Image, output_format: str, compression: int | None) -> Output:
    out = io.BytesIO()
    fmt = output_format.lower()
    if fmt == "jpeg":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, format="JPEG", quality=max(1, compression if compression is not None else 95))
    elif fmt == "webp":
        image.save(out, format="WEBP", quality=compression if compression is not None else 100)
    else:
        image.save(out, format="PNG")
    return Output(out.getvalue(), CONTENT_TYPES[fmt], image.width, image.height)
