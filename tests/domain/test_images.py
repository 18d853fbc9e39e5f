"""Source checks with Pillow: what is accepted, converted, turned upright or refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from editq.errors import EditqError
from editq.images import check_image, check_mask, encode, inspect_output, shape_output
from tests import images

LIMITS = {"max_bytes": 5_000_000, "max_pixels": 4_000_000}


def _save(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **kw)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_accepted_formats_are_stored_as_sent(fmt: str) -> None:
    data = images.scene(fmt=fmt)
    checked = check_image(data, param="image", **LIMITS)
    assert checked.data == data
    assert checked.size == (640, 480)
    assert checked.content_type == f"image/{fmt.lower()}"
    assert checked.converted_from is None


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_still_formats_become_png(fmt: str) -> None:
    checked = check_image(images.scene(fmt=fmt), param="image", **LIMITS)
    assert checked.content_type == "image/png"
    assert checked.converted_from == fmt.lower()
    assert Image.open(io.BytesIO(checked.data)).format == "PNG"


def test_exif_orientation_is_applied() -> None:
    image = Image.open(io.BytesIO(images.scene(fmt="JPEG")))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    data = _save(image, "JPEG", exif=exif.tobytes())
    checked = check_image(data, param="image", **LIMITS)
    assert checked.size == (480, 640)
    assert Image.open(io.BytesIO(checked.data)).getexif().get(0x0112, 1) == 1


def test_cmyk_jpeg_becomes_png() -> None:
    data = _save(Image.new("CMYK", (50, 40), (0, 100, 100, 0)), "JPEG")
    checked = check_image(data, param="image", **LIMITS)
    assert checked.content_type == "image/png"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_empty"),
        (b"GIF89a-not-really", "invalid_image"),
        (b"plain text", "invalid_image"),
        (images.scene(fmt="JPEG")[:3000], "image_truncated"),
        (images.scene(3000, 2000, fmt="PNG"), "image_too_many_pixels"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, "unsupported_image_format"),
        (b"\x00\x00\x00\x1cftypavif" + b"\x00" * 40, "unsupported_image_format"),
    ],
)
def test_refusals(data: bytes, code: str) -> None:
    with pytest.raises(EditqError) as refused:
        check_image(data, param="image", **LIMITS)
    assert refused.value.code == code
    assert refused.value.param == "image"


def test_too_large_by_bytes() -> None:
    with pytest.raises(EditqError) as refused:
        check_image(images.scene(), param="image[2]", max_bytes=100, max_pixels=10**8)
    assert refused.value.code == "image_too_large"
    assert refused.value.status == 413
    assert refused.value.param == "image[2]"


def test_pillow_bomb_warning_is_a_refusal() -> None:
    bomb = _save(Image.new("1", (12000, 12000)), "PNG")
    with pytest.raises(EditqError) as refused:
        check_image(bomb, param="image", max_bytes=10**8, max_pixels=10**9)
    assert refused.value.code == "image_too_many_pixels"


def test_mask_rules() -> None:
    assert check_mask(images.mask(), first_image=(640, 480), max_bytes=10**7, max_pixels=10**7).has_alpha
    for data, code in (
        (images.mask(alpha=False), "mask_without_alpha"),
        (images.scene(fmt="JPEG"), "mask_not_png"),
        (images.mask(100, 100), "mask_size_mismatch"),
    ):
        with pytest.raises(EditqError) as refused:
            check_mask(data, first_image=(640, 480), max_bytes=10**7, max_pixels=10**7)
        assert refused.value.code == code
    with pytest.raises(EditqError) as big:
        check_mask(images.mask(), first_image=(640, 480), max_bytes=10, max_pixels=10**7)
    assert big.value.code == "mask_too_large"


def test_outputs_are_cropped_and_resized_exactly() -> None:
    out = inspect_output(_save(Image.new("RGB", (1536, 1024), "red"), "PNG"))
    shaped = shape_output(out, crop_ratio=(16, 9), resize_to=None, output_format="png", compression=None)
    assert (shaped.width, shaped.height) == (1536, 864)
    shaped = shape_output(out, crop_ratio=(4, 3), resize_to=(800, 600), output_format="jpeg", compression=80)
    assert (shaped.width, shaped.height) == (800, 600)
    assert Image.open(io.BytesIO(shaped.data)).format == "JPEG"
    assert shape_output(out, crop_ratio=None, resize_to=None, output_format="png", compression=None) is out
    with pytest.raises(ValueError, match="unreadable"):
        inspect_output(b"garbage")
    assert encode(Image.new("RGBA", (4, 4)), "webp", 50).content_type == "image/webp"


def test_multi_picture_jpeg_keeps_its_primary_picture() -> None:
    primary, depth = Image.new("RGB", (64, 48), "red"), Image.new("RGB", (64, 48), "blue")
    out = io.BytesIO()
    primary.save(out, format="MPO", save_all=True, append_images=[depth])
    checked = check_image(out.getvalue(), param="image", **LIMITS)
    stored = Image.open(io.BytesIO(checked.data))
    assert stored.format == "JPEG"
    assert getattr(stored, "n_frames", 1) == 1
    assert checked.content_type == "image/jpeg"
    assert checked.converted_from == "mpo"
    pixel = stored.convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)
    assert pixel[0] > 200  # red: the primary picture


def test_animated_png_and_multipage_tiff_are_refused() -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "blue")]
    for fmt in ("PNG", "TIFF", "WEBP"):
        out = io.BytesIO()
        frames[0].save(out, format=fmt, save_all=True, append_images=frames[1:])
        with pytest.raises(EditqError) as refused:
            check_image(out.getvalue(), param="image", **LIMITS)
        assert refused.value.code == "animated_image", fmt


def _jpeg(**kw: object) -> bytes:
    return _save(Image.open(io.BytesIO(images.scene(320, 240))).convert("RGB"), "JPEG", **kw)


def _eoi_dropped(data: bytes) -> bytes:
    assert data.endswith(b"\xff\xd9")
    return data[:-2]


def _scan_dropped(data: bytes) -> bytes:
    """Everything from the first scan on replaced by the end-of-image marker."""
    return data[: data.index(b"\xff\xda")] + b"\xff\xd9"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("baseline", _jpeg(quality=90)),
        ("progressive", _jpeg(progressive=True)),
        ("restart markers", _jpeg(restart_marker_blocks=2)),
        ("grayscale", _save(Image.new("L", (64, 48), 90), "JPEG")),
        ("bytes after the end-of-image marker", _jpeg() + b"trailing bytes"),
    ],
)
def test_plain_jpegs_are_stored_as_they_came(name: str, data: bytes) -> None:
    checked = check_image(data, param="image", **LIMITS)
    assert (checked.data, checked.content_type) == (data, "image/jpeg"), name
    assert checked.size == Image.open(io.BytesIO(data)).size


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("end-of-image marker missing", _eoi_dropped(_jpeg()), "image_truncated"),
        ("cut in a progressive scan", _jpeg(progressive=True)[:-400], "image_truncated"),
        ("no scan at all", _scan_dropped(_jpeg()), "image_corrupt"),
        ("garbage where a segment starts", _jpeg().replace(b"\xff\xda", b"\x00\xda", 1), "image_corrupt"),
    ],
)
def test_broken_jpegs_are_refused_without_decoding(name: str, data: bytes, code: str) -> None:
    with pytest.raises(EditqError) as refused:
        check_image(data, param="image", **LIMITS)
    assert refused.value.code == code, (name, refused.value)
