"""E-invoices read exactly: EN 16931 XML (CII for Factur-X, ZUGFeRD 1 and 2 and XRechnung; UBL 2.1)
parsed safely into business terms, and a request's fields filled from them before any engine runs.

- `parsing`: the hardened parser (no DTD, no entities, no network; size, depth and element
  limits) and the roots that make a file an e-invoice;
- `standards`: the typed invoice (`EInvoice`: BT-1 invoice number ... BT-115 amount due, and the
  lines), read from each syntax;
- `terms`: which business term a field names, in six languages;
- `filling`: the XML's cells (``"source": "xml"``, quoted from the page where it prints them), the
  request for the fields left, and the merge with the engine's answer;
- `rendering`: an uploaded XML's text.
"""

from __future__ import annotations

from lxml import etree

from extraction.einvoice.filling import MISSING, XML_CONTENT_TYPE, XmlFirst, prefill
from extraction.einvoice.parsing import (
    UPLOAD_FORMATS,
    UPLOAD_ROOTS,
    Syntax,
    XmlProblem,
    check_size,
    name_of,
    parse_xml,
    upload_root,
)
from extraction.einvoice.rendering import invoice_text
from extraction.einvoice.standards import BT, EInvoice, Line, Value, read_invoice

__all__ = [
    "BT",
    "MISSING",
    "UPLOAD_FORMATS",
    "UPLOAD_ROOTS",
    "XML_CONTENT_TYPE",
    "EInvoice",
    "Line",
    "Syntax",
    "Value",
    "XmlFirst",
    "XmlProblem",
    "check_size",
    "invoice_text",
    "kept_xml",
    "name_of",
    "parse_xml",
    "prefill",
    "read_invoice",
    "stored_invoice",
    "upload_root",
]


def kept_xml(root: etree._Element) -> str:
    """XML as Sheaf keeps it once `parse_xml` accepted it: UTF-8 text without the declaration,
    comments or processing instructions, read again by `stored_invoice`."""
    return etree.tostring(root, encoding="unicode")


def stored_invoice(xml: str) -> EInvoice:
    """The business terms of XML kept by `kept_xml`."""
    data = xml.encode()
    return read_invoice(parse_xml(data, max_bytes=len(data)))
