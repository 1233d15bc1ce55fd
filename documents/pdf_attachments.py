"""The e-invoice XML a PDF carries (Factur-X, ZUGFeRD 1 and 2, XRechnung), found among its
embedded files. Runs inside the reader sandbox's child (`documents.formats`), with pdfium, which
already reads the pages: no Django import, and no second parser of the file.

Why not the factur-x library's `get_xml_from_pdf`: it opens the PDF again with another parser and
parses every candidate with lxml's default parser (which expands internal entities) before Sheaf's
own hardened parser could refuse it. Parsing is left to the worker (`documents.einvoices`).
"""

from __future__ import annotations

import pypdfium2 as pdfium

# The names the standards give the XML, in order of preference when a PDF carries several:
# Factur-X and ZUGFeRD 2.1+, ZUGFeRD 2.0 (and 1.0's "ZUGFeRD-invoice.xml", the same once case is
# folded), XRechnung embedded in a PDF.
INVOICE_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")


class AttachmentTooLarge(Exception):
    def __init__(self, name: str, size: int, limit: int) -> None:
        super().__init__(
            f"its embedded {name} is {size / 2**20:,.1f} MB and the limit is {limit / 2**20:g} MB"
        )


def invoice_attachment(document: pdfium.PdfDocument, *, max_bytes: int) -> tuple[str, bytes] | None:
    """(name, bytes) of the e-invoice XML embedded in the PDF, or None when it has none.

    Raises AttachmentTooLarge past `max_bytes` (the sandbox's memory limit bounds what pdfium
    inflates on the way); pdfium's own errors propagate, for the caller to report."""
    found: dict[str, tuple[str, int]] = {}
    for index in range(document.count_attachments()):
        name = document.get_attachment(index).get_name()
        folded = name.casefold()
        if folded in INVOICE_NAMES and folded not in found:
            found[folded] = (name, index)
    for wanted in INVOICE_NAMES:
        if wanted in found:
            name, index = found[wanted]
            data = bytes(document.get_attachment(index).get_data())
            if len(data) > max_bytes:
                raise AttachmentTooLarge(name, len(data), max_bytes)
            return name, data
    return None
