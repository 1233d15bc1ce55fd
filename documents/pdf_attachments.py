"""The e-invoice XML a PDF carries (Factur-X, ZUGFeRD 1 and 2, XRechnung), found among its
embedded files. Runs inside the reader sandbox's child (`documents.sandbox`), on the
`PdfReader` that read the pages (`documents.formats`), so no Django import and nothing beyond pypdf.

Why pypdf's `attachment_list` rather than the factur-x library's `get_xml_from_pdf`: the child has
already opened the file under its CPU, memory and decompression limits, and pypdf gives the
attachment's bytes from that reader; `get_xml_from_pdf` opens the PDF a second time and parses
every candidate with lxml's default parser (which expands internal entities) before Sheaf's own
hardened parser could refuse it. Parsing is left to the worker (`extraction.einvoice`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pypdf import PdfReader

# The names the standards give the XML, in order of preference when a PDF carries several:
# Factur-X and ZUGFeRD 2.1+, ZUGFeRD 2.0 (and 1.0's "ZUGFeRD-invoice.xml", the same once case is
# folded), XRechnung embedded in a PDF.
INVOICE_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")


class AttachmentTooLarge(Exception):
    def __init__(self, name: str, size: int, limit: int) -> None:
        super().__init__(
            f"its embedded {name} is {size / 2**20:,.1f} MB and the limit is {limit / 2**20:g} MB"
        )


def invoice_attachment(reader: PdfReader, *, max_bytes: int) -> tuple[str, bytes] | None:
    """(name, bytes) of the e-invoice XML embedded in the PDF, or None when it has none.

    Raises AttachmentTooLarge past `max_bytes`; pypdf's own errors (a broken name tree or stream)
    propagate, for the caller to report as a malformed file.
    """
    found = {}
    for attachment in reader.attachment_list:
        # The name tree's key, then the file specification's /UF or /F.
        for name in (attachment.name, attachment.alternative_name):
            folded = str(name or "").casefold()
            if folded in INVOICE_NAMES and folded not in found:
                found[folded] = (str(name), attachment)
    for wanted in INVOICE_NAMES:
        if wanted not in found:
            continue
        name, attachment = found[wanted]
        declared = attachment.size
        if isinstance(declared, int) and declared > max_bytes:
            raise AttachmentTooLarge(name, declared, max_bytes)
        data = attachment.content  # inflated under pypdf's decompression limits
        if len(data) > max_bytes:
            raise AttachmentTooLarge(name, len(data), max_bytes)
        return name, data
    return None
