"""E-invoice XML for the readers: an uploaded UBL or CII file, and the XML a PDF carries
(`documents.pdf_attachments` finds it in the sandbox). Both are parsed here, in the worker, by
`extraction.einvoice`'s hardened parser, which refuses DTDs and entities and bounds size, depth and
element count; what it accepts is kept on the document (`Document.einvoice_xml`), so a re-run maps
the fields again without reading the file.

Limit, a Django setting whose default lives in batchsite/settings.py: SHEAF_XML_MAX_MB.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from extraction.contract import ExtractionError
from extraction.einvoice import (
    UPLOAD_FORMATS,
    UPLOAD_ROOTS,
    XmlProblem,
    check_size,
    invoice_text,
    kept_xml,
    name_of,
    parse_xml,
    read_invoice,
)


@dataclass(frozen=True)
class XmlRead:
    text: str  # the XML rendered as "Label: value" lines
    truncated: bool
    xml: str  # the XML as kept


def max_xml_bytes() -> int:
    megabytes: int = settings.SHEAF_XML_MAX_MB
    return megabytes * 2**20


def read_xml_upload(path: Path, filename: str, *, max_chars: int) -> XmlRead:
    """An uploaded e-invoice. Raises ExtractionError: too_large, malformed, or unsupported_type
    when its root is not an invoice after all."""
    limit = max_xml_bytes()
    try:
        with path.open("rb") as stream:
            # Its size from the file, so a 2 GB upload is refused without being read.
            check_size(os.fstat(stream.fileno()).st_size, max_bytes=limit)
            data = stream.read(limit + 1)
        root = parse_xml(data, max_bytes=limit)
        if name_of(root) not in UPLOAD_ROOTS:
            raise XmlProblem("unsupported_type", f"its root element is <{name_of(root)}>")
        read_invoice(root)
    except XmlProblem as problem:
        raise ExtractionError(problem.code, _message(problem, filename)) from None
    text, truncated = invoice_text(root, max_chars=max_chars)
    return XmlRead(text=text, truncated=truncated, xml=kept_xml(root))


def _message(problem: XmlProblem, filename: str) -> str:
    if problem.code == "too_large":
        return f"{filename} is too large to read: {problem.reason}."
    if problem.code == "unsupported_type":
        return f"{filename} is not an e-invoice: {problem.reason}; Sheaf reads {UPLOAD_FORMATS}."
    return f"{filename} is not a readable e-invoice: {problem.reason}."


def embedded_xml(name: str, data: bytes, filename: str) -> str | None:
    """The XML a PDF carries, as kept; None when it is no invoice (another kind of attachment
    under one of the standard names), so the PDF is read from its text alone. Raises
    ExtractionError (malformed, too_large) when the XML is broken or hostile: the PDF claims to
    be an e-invoice, and its legal content cannot be read."""
    try:
        root = parse_xml(data, max_bytes=max_xml_bytes())
        read_invoice(root)
    except XmlProblem as problem:
        if problem.code == "unsupported_type":
            return None
        raise ExtractionError(
            problem.code,
            f"{filename} carries an e-invoice ({name}) that cannot be read: {problem.reason}.",
        ) from None
    return kept_xml(root)
