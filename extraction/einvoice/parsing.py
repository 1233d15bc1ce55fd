"""Parsing e-invoice XML without trusting it: no DTD, no entity expansion, no network, bounded size,
depth and element count; and recognising an e-invoice by its root element.

lxml (libxml2) is configured so nothing outside the bytes is ever fetched or expanded
(``resolve_entities=False``, ``no_network=True``, ``load_dtd=False``, ``huge_tree=False``), and any
document type declaration is refused outright: EN 16931 syntaxes never use one, and refusing it
closes the entity-expansion family of attacks (billion laughs, external entities) whatever the
parser's settings. Size, nesting and element count are checked while parsing, so a hostile file
stops at the limit instead of after building its whole tree.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from enum import StrEnum
from typing import TypedDict

from lxml import etree

# Deep enough for every EN 16931 syntax (a CII line item's amounts sit 7 levels down, UBL
# extensions a few more); far below libxml2's own limit of 256.
MAX_DEPTH = 64
# About 10,000 invoice lines; a larger XML is refused rather than built in memory.
MAX_ELEMENTS = 250_000
# Where the root element must appear in an upload: past comments and processing instructions.
_ROOT_WITHIN_BYTES = 64 * 1024

CII = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
ZUGFERD1 = "urn:ferd:CrossIndustryDocument:invoice:1p0"
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"


_WHERE = re.compile(r" \(<string>, line \d+\)")


class Syntax(StrEnum):
    CII = "CII"  # UN/CEFACT Cross Industry Invoice D16B: Factur-X, ZUGFeRD 2, XRechnung
    ZUGFERD1 = "ZUGFeRD 1"  # its predecessor, Cross Industry Document, only inside PDFs
    UBL = "UBL"  # UBL 2.1 Invoice or CreditNote: Peppol, XRechnung's second syntax


# Roots an upload may have; ZUGFeRD 1 is read only where it is found, embedded in a PDF.
UPLOAD_ROOTS = {
    f"{{{CII}}}CrossIndustryInvoice": Syntax.CII,
    f"{{{UBL_INVOICE}}}Invoice": Syntax.UBL,
    f"{{{UBL_CREDIT_NOTE}}}CreditNote": Syntax.UBL,
}
INVOICE_ROOTS = {**UPLOAD_ROOTS, f"{{{ZUGFERD1}}}CrossIndustryDocument": Syntax.ZUGFERD1}
UPLOAD_FORMATS = "a UBL 2.1 Invoice or CreditNote, or a CII CrossIndustryInvoice"


class XmlProblem(Exception):
    """Why XML was refused: code is malformed, too_large or unsupported_type (no invoice); reason
    completes "<file> is ...: <reason>"."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class _Options(TypedDict):
    resolve_entities: bool
    no_network: bool
    load_dtd: bool
    huge_tree: bool
    remove_comments: bool
    remove_pis: bool


_SAFE = _Options(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def name_of(element: etree._Element) -> str:
    """An element's name in Clark notation, ``{namespace}local``, as UPLOAD_ROOTS holds them."""
    return etree.QName(element).text


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines() or [type(error).__name__]
    # lxml names its input "<string>"; the user knows which file it was.
    return _WHERE.sub("", lines[0])[:200].rstrip(".")


# Comments, processing instructions and white space may come before a DOCTYPE.
_PROLOG_DTD = re.compile(r"\A\ufeff?(?:\s+|<\?.*?\?>|<!--.*?-->)*<!DOCTYPE", re.DOTALL)


def _dtd_refused() -> XmlProblem:
    return XmlProblem("malformed", "it declares a DTD (<!DOCTYPE>), which e-invoices never do")


def _declares_dtd(data: bytes) -> bool:
    """Whether the prolog declares a document type. Checked on the bytes, before libxml2 sees
    them: with entities unresolved a declaration would do no harm, but an e-invoice never has
    one, so a file that declares entities is refused outright rather than read with holes in it
    (libxml2 would also stop a billion laughs by its amplification limit, with a murkier
    message)."""
    head = data[:_ROOT_WITHIN_BYTES].removeprefix(b"\xef\xbb\xbf")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    elif head.startswith((b"<\x00", b"\x00<")):  # UTF-16 without a byte-order mark
        text = head.decode("utf-16-le" if head[0] else "utf-16-be", errors="ignore")
    else:
        text = head.decode("latin-1")  # every encoding an invoice uses spells "<!DOCTYPE" in ASCII
    return _PROLOG_DTD.match(text) is not None


def check_size(size: int, *, max_bytes: int) -> None:
    """XmlProblem (too_large) when `size` bytes of XML are more than `max_bytes`."""
    if size > max_bytes:
        raise XmlProblem(
            "too_large",
            f"it is {size / 2**20:,.1f} MB of XML and the limit is {max_bytes / 2**20:g} MB",
        )


def parse_xml(data: bytes, *, max_bytes: int) -> etree._Element:
    """The root element of `data`; XmlProblem when it is too large, too deep, declares a DTD or
    is not well-formed."""
    check_size(len(data), max_bytes=max_bytes)
    if _declares_dtd(data):
        raise _dtd_refused()
    depth = elements = 0
    events = etree.iterparse(io.BytesIO(data), events=("start", "end"), **_SAFE)
    try:
        for event, element in events:
            if event == "end":
                depth -= 1
                continue
            if not elements and element.getroottree().docinfo.doctype:
                raise _dtd_refused()  # in an encoding `_declares_dtd` does not read
            depth += 1
            elements += 1
            if depth > MAX_DEPTH:
                raise XmlProblem("too_large", f"its elements nest more than {MAX_DEPTH} deep")
            if elements > MAX_ELEMENTS:
                raise XmlProblem("too_large", f"it has more than {MAX_ELEMENTS:,} elements")
    except etree.XMLSyntaxError as error:
        raise XmlProblem("malformed", f"it is not well-formed XML ({_first_line(error)})") from None
    root = events.root
    if root is None:
        raise XmlProblem("malformed", "it has no root element")
    return root


def upload_root(chunks: Iterable[bytes]) -> tuple[str | None, str]:
    """The root element of an uploaded XML (Clark notation, ``{namespace}name``), read from as
    few of `chunks` as it takes; (None, why) when no root element is found in its first 64 KB.

    Only the root is judged here: what follows it (well-formed or not, entities, size) is the
    read's to refuse, so a broken invoice fails its own document instead of the whole upload.
    """
    parser = etree.XMLPullParser(events=("start",), **_SAFE)
    seen = 0
    try:
        for chunk in chunks:
            parser.feed(chunk[: _ROOT_WITHIN_BYTES - seen])
            seen += len(chunk)
            for _event, element in parser.read_events():
                return name_of(element), ""
            if seen >= _ROOT_WITHIN_BYTES:
                return None, "no XML root element was found in its first 64 KB"
        parser.close()
    except etree.XMLSyntaxError as error:
        # libxml2 parses a whole chunk before handing out its events; a root element it saw
        # before the error still counts.
        for _event, element in parser.read_events():
            return name_of(element), ""
        return None, f"it is not well-formed XML ({_first_line(error)})"
    for _event, element in parser.read_events():
        return name_of(element), ""
    return None, "it has no XML root element"
