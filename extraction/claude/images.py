"""A scan or photo as the image blocks Claude is sent beside its OCR text: PNG or JPEG as
uploaded when within the API's limits, a TIFF (which the API does not take) as PNG, every image
scaled down to the API's limits (8,000 pixels a side, 5 MB an image)."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image, ImageSequence

IMAGE_TYPES = ("image/png", "image/jpeg", "image/tiff")
MAX_SIDE = 8000
MAX_BYTES = 5 * 1024 * 1024 * 3 // 4  # base64 grows an image by a third within 5 MB
# Above 20 images in one request the API allows only 2,000 pixels a side.
MAX_IMAGES = 20


def _encoded(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _fitted(image: Image.Image) -> bytes:
    """The image as PNG, scaled down until it is within the API's limits."""
    if image.mode not in ("RGB", "L", "RGBA", "LA"):
        image = image.convert("RGB")
    scale = min(1.0, MAX_SIDE / max(image.size))
    while True:
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        data = _encoded(image if scale == 1.0 else image.resize(size, Image.Resampling.LANCZOS))
        if len(data) <= MAX_BYTES:
            return data
        scale *= 0.75


def image_blocks(
    data: bytes, content_type: str, *, pages: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """The image blocks of an uploaded image's pages (all, or the 1-based `pages` range)."""
    with Image.open(io.BytesIO(data)) as opened:
        if (
            content_type in ("image/png", "image/jpeg")
            and len(data) <= MAX_BYTES
            and max(opened.size) <= MAX_SIDE
            and pages in (None, (1, 1))
        ):
            encoded = [(content_type, data)]
        else:
            frames = list(ImageSequence.Iterator(opened))
            first, last = pages or (1, len(frames))
            chosen = frames[first - 1 : last][:MAX_IMAGES]
            encoded = [("image/png", _fitted(frame.copy())) for frame in chosen]
    return [
        {
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": media_type,
                "data": base64.b64encode(image).decode(),
            },
        }
        for media_type, image in encoded
    ]
