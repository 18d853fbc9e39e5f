"""What a caller passes as images and options, turned into the API's multipart or JSON fields."""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, TypedDict, cast

from editq.client.models import Image

#: One image: a path, its bytes, an open binary file, a (filename, bytes) pair, or an `Image`
#: uploaded earlier (`Client.upload`), which is referenced by id instead of sent again.
ImageInput = str | os.PathLike[str] | bytes | IO[bytes] | tuple[str, bytes] | Image
#: One image, or several (up to 16 per job).
Images = ImageInput | Sequence[ImageInput]
#: A multipart file part: field name, then (filename, content, content type).
FilePart = tuple[str, tuple[str, bytes, str]]


class EditOptions(TypedDict, total=False):
    """The options of `POST /v1/edits` (README, "Submitting"); None means "not sent"."""

    model: str | None
    n: int | None
    size: str | None
    aspect_ratio: str | None
    output_size: str | None
    strength: str | None
    quality: str | None
    output_format: str | None
    output_compression: int | None
    background: str | None
    input_fidelity: str | None
    webhook_url: str | None
    webhook_events: str | Sequence[str] | None
    priority: str | None
    max_cost_usd: str | Decimal | float | None
    metadata: Mapping[str, Any] | None
    reuse: bool | None
    user: str | None


def image_list(images: Images) -> list[ImageInput]:
    """`images` as a list: one image stays one image (a path string is not a sequence here)."""
    if isinstance(images, str | bytes | os.PathLike | tuple | Image) or hasattr(images, "read"):
        return [cast(ImageInput, images)]
    return list(images)


def file_part(image: ImageInput, fallback_name: str) -> tuple[str, bytes, str]:
    """(filename, content, content type) for one image; the API checks the content itself."""
    if isinstance(image, Image):
        raise TypeError("an uploaded Image is referenced by id, not sent as a file")
    if isinstance(image, bytes):
        name, content = fallback_name, image
    elif isinstance(image, tuple):
        name, content = image
    elif isinstance(image, str | os.PathLike):
        path = Path(image)
        name, content = path.name, path.read_bytes()
    else:
        name = Path(str(getattr(image, "name", "") or fallback_name)).name
        content = image.read()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, content, kind


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return json.dumps(dict(value))
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def fields(prompt: str, options: Mapping[str, Any], *, form: bool) -> dict[str, Any]:
    """The prompt and the options that are set, as form strings or JSON values."""
    convert = _form_value if form else _json_value
    return {"prompt": prompt, **{k: convert(v) for k, v in options.items() if v is not None}}


def edit_body(
    images: Images, prompt: str, mask: ImageInput | None, options: Mapping[str, Any]
) -> dict[str, Any]:
    """Keyword arguments of a `Request` for an edit body: JSON when every image (and the mask) is
    an `Image` uploaded earlier, else multipart with the files."""
    found = image_list(images)
    if not found:
        raise ValueError("an edit needs at least one image")
    uploaded = [isinstance(image, Image) for image in [*found, *([mask] if mask is not None else [])]]
    if all(uploaded):
        body = fields(prompt, options, form=False)
        body["image_ids"] = [image.id for image in found if isinstance(image, Image)]
        if isinstance(mask, Image):
            body["mask_id"] = mask.id
        return {"json": body}
    if any(uploaded):
        raise ValueError("pass either files or uploaded Images, not both")
    name = "image" if len(found) == 1 else "image[]"
    files: list[FilePart] = [
        (name, file_part(image, f"image-{index}.png")) for index, image in enumerate(found)
    ]
    if mask is not None:
        files.append(("mask", file_part(mask, "mask.png")))
    return {"data": fields(prompt, options, form=True), "files": files}
