"""Receiving uploaded files: the streaming size cap, display names, and type checks by content.

Every surface (dashboard, API, CLI) hands files to `inspect_upload`; nothing here writes to storage.
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import IO, Any

from django.core.files import File
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat

from accounts.plans import largest_file_size
from batchsite.errors import Problem

MAX_FILENAME_LENGTH = 255


@dataclass(frozen=True)
class FileKind:
    extension: str
    content_type: str
    label: str


KINDS = {
    "pdf": FileKind("pdf", "application/pdf", "PDF"),
    "csv": FileKind("csv", "text/csv", "CSV"),
    "xlsx": FileKind(
        "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XLSX"
    ),
    "txt": FileKind("txt", "text/plain", "TXT"),
    "xml": FileKind("xml", "application/xml", "an e-invoice (UBL or CII XML)"),
    # Scans and photos, read by OCR (documents.ocr).
    "png": FileKind("png", "image/png", "PNG"),
    "jpg": FileKind("jpg", "image/jpeg", "JPEG"),
    "jpeg": FileKind("jpeg", "image/jpeg", "JPEG"),
    "tif": FileKind("tif", "image/tiff", "TIFF"),
    "tiff": FileKind("tiff", "image/tiff", "TIFF"),
}
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "tif", "tiff"})
SUPPORTED = "PDF, CSV, XLSX, TXT, PNG, JPEG, TIFF or an XML e-invoice (UBL, CII)"
# The file pickers' `accept` attribute.
ACCEPT = ",".join(f".{extension}" for extension in KINDS)

# What an image file starts with (its magic bytes), by label: the extension must agree.
_IMAGE_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    # Little- and big-endian TIFF, then BigTIFF.
    "TIFF": (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"),
}


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    """Spools uploads to temporary files, keeping no more than the sender's plan allows.

    Per file it keeps at most the plan's file size + 1 byte, and per request at most what a
    full batch of the largest files could hold; past that the bytes are read off the socket
    and dropped while Django still counts them into `file.size`, so the upload is refused as
    too large (or as one file too many) without ever being held whole. An anonymous request
    keeps nothing: CSRF checks read the body before any view can refuse it.
    """

    def handle_raw_input(self, *args: Any, **kwargs: Any) -> None:
        from accounts.selectors import user_effective_plan

        user = getattr(self.request, "user", None)
        if user is not None and user.is_authenticated:
            plan = user_effective_plan(user).plan
            self._file_cap = plan.max_file_size + 1
            self._request_room = (plan.files_per_batch + 1) * self._file_cap
        else:
            self._file_cap = self._request_room = 0
        super().handle_raw_input(*args, **kwargs)

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._kept = 0
        if not hasattr(self, "_file_cap"):  # parsed outside a request's usual path
            self._file_cap = self._request_room = largest_file_size() + 1

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        room = min(self._file_cap - self._kept, self._request_room)
        if room > 0:
            piece = raw_data[:room]
            self.file.write(piece)
            self._kept += len(piece)
            self._request_room -= len(piece)


def display_filename(raw: str | None) -> str:
    """The client's filename reduced to something safe to show: no path, no control characters,
    at most 255 characters with the extension kept. It is never used as a storage path."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if name in {"", ".", ".."}:
        name = "document"
    if len(name) > MAX_FILENAME_LENGTH:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) < 16:
            name = stem[: MAX_FILENAME_LENGTH - len(ext) - 1] + "." + ext
        else:
            name = name[:MAX_FILENAME_LENGTH]
    return name


@dataclass(frozen=True)
class InspectedUpload:
    file: File[bytes]
    filename: str
    kind: FileKind
    size: int
    sha256: str


def inspect_upload(upload: File[bytes], *, max_size: int) -> InspectedUpload | Problem:
    """Check one upload's name, size and content; return what was learnt or the problem."""
    filename = display_filename(upload.name)
    ext = filename.rpartition(".")[2].lower() if "." in filename else ""
    kind = KINDS.get(ext)
    if kind is None:
        shown = f".{ext} files are" if ext else "Files without an extension are"
        return Problem(
            "unsupported_type", f"{filename}: {shown} not supported; upload {SUPPORTED}."
        )
    size = upload.size or 0
    if size == 0:
        return Problem("empty_file", f"{filename} is empty.")
    if size > max_size:
        return Problem(
            "file_too_large",
            f"{filename} is {filesizeformat(size)}; your plan allows files up to "
            f"{filesizeformat(max_size)}.",
        )
    sha256, wrong_content = _hash_and_check(upload, kind)
    if wrong_content:
        return Problem("unsupported_type", f"{filename} has a .{ext} name but {wrong_content}.")
    return InspectedUpload(file=upload, filename=filename, kind=kind, size=size, sha256=sha256)


def file_sha256(upload: File[bytes]) -> str:
    """The SHA-256 of an upload's bytes, read in chunks; the file is left at its start."""
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def _hash_and_check(upload: File[bytes], kind: FileKind) -> tuple[str, str]:
    """One pass over the bytes: SHA-256, and how the content is not what the extension says
    ("" when it is)."""
    if kind.extension == "xml":
        why = _not_an_einvoice(upload)
        return file_sha256(upload), why
    digest = hashlib.sha256()
    text = _TextSniffer() if kind.extension in {"csv", "txt"} else None
    head = b""
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
        if len(head) < 1024:
            head += chunk[: 1024 - len(head)]
        if text is not None:
            text.feed(chunk)
    upload.seek(0)
    if kind.extension == "pdf":
        ok = _has_pdf_header(head)
    elif kind.extension in IMAGE_EXTENSIONS:
        ok = head.startswith(_IMAGE_SIGNATURES[kind.label])
    elif kind.extension == "xlsx":
        ok = _is_xlsx(upload)
        upload.seek(0)
    else:
        ok = text is not None and text.finish()
    return digest.hexdigest(), "" if ok else f"its content is not {kind.label}"


def _not_an_einvoice(upload: File[bytes]) -> str:
    """Why an .xml upload is not an e-invoice Sheaf reads ("" when it is one), from its root
    element alone: the rest is parsed, with its limits, when the document is read."""
    # Imported here: lxml is needed by web processes only when an XML file is uploaded.
    from extraction.einvoice import UPLOAD_FORMATS, UPLOAD_ROOTS, upload_root

    upload.seek(0)
    root, why = upload_root(upload.chunks())
    upload.seek(0)
    if root is None:
        return why
    if root not in UPLOAD_ROOTS:
        return f"it is not an e-invoice: its root element is <{root}>, not {UPLOAD_FORMATS}"
    return ""


# What may come before a PDF's header: a byte-order mark some tools write, then PDF whitespace.
_UTF8_BOM = codecs.BOM_UTF8
_PDF_WHITESPACE = b" \t\r\n\x0c"


def _has_pdf_header(head: bytes) -> bool:
    """Whether `head` starts with ``%PDF-``, after at most a BOM and whitespace. Anywhere else
    in the first kilobyte is not enough: an HTML page or a ZIP can carry those five bytes in a
    comment or a member's name, and would then be stored and served as a PDF."""
    head = head.removeprefix(_UTF8_BOM)
    return head.lstrip(_PDF_WHITESPACE).startswith(b"%PDF-")


def _is_xlsx(stream: IO[bytes]) -> bool:
    try:
        with zipfile.ZipFile(stream) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and "xl/workbook.xml" in names


# C0 controls other than tab, newline, form feed and carriage return mark binary content.
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f]")


class _TextSniffer:
    """Decides, incrementally, whether bytes are text: UTF-8 (or UTF-16 with a BOM), else
    Windows-1252 without binary control characters."""

    def __init__(self) -> None:
        self._decoders: list[codecs.IncrementalDecoder] | None = None
        self._alive: list[bool] = []
        self._started = False

    def _start(self, first: bytes) -> None:
        if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encodings = ["utf-16"]
        else:
            encodings = ["utf-8-sig", "cp1252"]
        self._decoders = [codecs.getincrementaldecoder(e)(errors="strict") for e in encodings]
        self._alive = [True] * len(encodings)
        self._started = True

    def feed(self, chunk: bytes, final: bool = False) -> None:
        if not self._started:
            self._start(chunk)
        assert self._decoders is not None
        for index, decoder in enumerate(self._decoders):
            if not self._alive[index]:
                continue
            try:
                decoded = decoder.decode(chunk, final)
            except UnicodeDecodeError:
                self._alive[index] = False
                continue
            if _BINARY_CONTROLS.search(decoded):
                self._alive[index] = False

    def finish(self) -> bool:
        if not self._started:
            return False
        self.feed(b"", final=True)
        return any(self._alive)
