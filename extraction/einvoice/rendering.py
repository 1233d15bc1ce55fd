"""An uploaded e-invoice's text: its XML written as "Label: value" lines, one per element that holds
text, so the review page can show it and an engine can look for the fields the XML mapping did not
fill (a "Payment terms" note, a delivery address) the way it reads any other document."""

from __future__ import annotations

import re

from lxml import etree

# Base64 attachments (an XRechnung may carry the invoice's PDF) are data, not text to read.
_LONGEST_VALUE = 1_000
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _words(element: etree._Element) -> str:
    """ "SellerTradeParty" -> "Seller Trade Party"; "IBANID" -> "IBANID" stays one word."""
    return " ".join(_CAMEL.split(etree.QName(element).localname))


def _label(element: etree._Element) -> str:
    """The element's name, after its parent's when alone it says little ("ID", "Name")."""
    own = _words(element)
    parent = element.getparent()
    if own == "Date Time String" and parent is not None:
        return _words(parent)  # CII's udt:DateTimeString: the parent says which date
    if len(own.split()) > 2 or parent is None:
        return own
    context = _words(parent).split()
    words = own.split()
    if context[-1] == words[0]:  # UBL's PartyName/Name, Price/PriceAmount
        words = words[1:]
    return " ".join([*context, *words])


def invoice_text(root: etree._Element, *, max_chars: int) -> tuple[str, bool]:
    """The rendering, cut at `max_chars`, and whether it was cut."""
    lines: list[str] = []
    size = -1
    for element in root.iter():
        if not isinstance(element.tag, str) or len(element):
            continue
        value = " ".join((element.text or "").split())
        if not value or len(value) > _LONGEST_VALUE:
            continue
        line = f"{_label(element)}: {value}"
        size += len(line) + 1
        if size > max_chars:
            return "\n".join(lines), True
        lines.append(line)
    return "\n".join(lines), False
