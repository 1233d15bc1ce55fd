"""Typed normalisation of values read from document text: dates, amounts, booleans and lists.

Pure functions without I/O. The local engine uses them twice: to judge whether a candidate value has
the shape a field wants, and to turn the chosen value into the result's canonical form.

Dates become ISO 8601 (``YYYY-MM-DD``). Numeric dates are read this way:

- ``2024-03-12`` and ``2024/03/12`` are year-month-day;
- ``12.03.2024`` (dots) is always day.month.year, the only order in which dotted dates are written;
- ``12/03/2024`` and ``12-03-2024`` are ambiguous. A part above 12 settles it for that date
  (``13/03/2024`` is day-first, ``03/13/2024`` month-first). Otherwise the caller's ``order``
  decides; `date_order_of` derives it from the whole document (month-first only when the
  document's unambiguous slash dates are all month-first), and the default is day-first, the
  reading shared by ISO-style and European documents (the offline engine makes it month-first
  for a document in US dollars);
- two-digit years are 20xx below 70 and 19xx from 70;
- month names and their abbreviations are read in English, German, French, Dutch, Spanish and
  Italian ("12. März 2024", "1er mars 2024", "12 de marzo de 2024", "3 giugno 2024").

Amounts become a decimal string (``"1234.50"``, the digits after the decimal point kept as written,
so nothing is rounded through a float) plus a currency code when a symbol or ISO code is recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum


class DateOrder(StrEnum):
    DAY_FIRST = "dmy"
    MONTH_FIRST = "mdy"


# Month names and abbreviations in English, German, French, Dutch, Spanish and Italian, also as
# written without accents ("fevrier", "maerz"). A name shared by languages ("mar", "juni") is
# listed once; none names two different months.
_MONTH_NAMES: dict[int, tuple[str, ...]] = {
    1: (
        *("january", "jan", "januar", "jänner", "janvier", "janv", "januari", "enero", "ene"),
        *("gennaio", "gen"),
    ),
    2: (
        *("february", "feb", "februar", "février", "fevrier", "févr", "fevr", "februari"),
        *("febrero", "febbraio"),
    ),
    3: ("march", "mar", "märz", "maerz", "mär", "mrz", "mars", "maart", "mrt", "marzo"),
    4: ("april", "apr", "avril", "avr", "abril", "abr", "aprile"),
    5: ("may", "mai", "mei", "mayo", "maggio", "mag"),
    6: ("june", "jun", "juni", "juin", "junio", "giugno", "giu"),
    7: ("july", "jul", "juli", "juillet", "juil", "julio", "luglio", "lug"),
    8: ("august", "aug", "août", "aout", "augustus", "agosto", "ago"),
    9: ("september", "sep", "sept", "septembre", "septiembre", "setiembre", "settembre", "set"),
    10: ("october", "oct", "oktober", "okt", "octobre", "octubre", "ottobre", "ott"),
    11: ("november", "nov", "novembre", "noviembre"),
    12: (
        *("december", "dec", "dezember", "dez", "décembre", "decembre", "déc", "diciembre"),
        *("dic", "dicembre"),
    ),
}
_MONTHS = {name: number for number, names in _MONTH_NAMES.items() for name in names}

# Longest names first, so "march" is preferred to "mar" inside the alternation.
_MONTH = "|".join(sorted((re.escape(name) for name in _MONTHS), key=len, reverse=True))
# "1st", "1.", French "1er", Spanish and Italian "1º" / "1°".
_ORDINAL = r"(?:st|nd|rd|th|er|\.|º|°)?"

_DATE = re.compile(
    rf"""
    (?<![\d.])(?P<iy>\d{{4}})(?P<isep>[-/.])(?P<im>\d{{1,2}})(?P=isep)(?P<id>\d{{1,2}})(?!\d)
    | (?<![\d.])(?P<na>\d{{1,2}})(?P<nsep>[-/.])(?P<nb>\d{{1,2}})(?P=nsep)
      (?P<ny>\d{{4}}|\d{{2}})(?!\d)
    | (?<![\w])(?P<td>\d{{1,2}}){_ORDINAL}[\s\-/]*(?:(?:of|de)\s+)?(?P<tm>{_MONTH})\b\.?,?
      [\s\-/]*(?:de\s+)?(?P<ty>\d{{4}}|\d{{2}})(?!\d)
    | (?<![\w])(?P<mm>{_MONTH})\b\.?\s*(?P<md>\d{{1,2}}){_ORDINAL},?\s*(?P<my>\d{{4}})(?!\d)
    """,
    re.IGNORECASE | re.VERBOSE,
)
_SLASH_DATE = re.compile(r"(?<![\d.])(\d{1,2})[/-](\d{1,2})[/-](?:\d{4}|\d{2})(?!\d)")


def _full_year(text: str) -> int:
    year = int(text)
    if len(text) == 2:
        return year + (2000 if year < 70 else 1900)
    return year


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _from_match(match: re.Match[str], order: DateOrder) -> str | None:
    if match["iy"]:
        return _iso(int(match["iy"]), int(match["im"]), int(match["id"]))
    if match["na"]:
        first, second, year = int(match["na"]), int(match["nb"]), _full_year(match["ny"])
        if match["nsep"] == ".":
            return _iso(year, second, first)
        day_first = _iso(year, second, first)
        month_first = _iso(year, first, second)
        if day_first and month_first:
            return day_first if order is DateOrder.DAY_FIRST else month_first
        return day_first or month_first
    if match["td"]:
        return _iso(_full_year(match["ty"]), _MONTHS[match["tm"].casefold()], int(match["td"]))
    return _iso(int(match["my"]), _MONTHS[match["mm"].casefold()], int(match["md"]))


def parse_date(text: str, order: DateOrder = DateOrder.DAY_FIRST) -> str | None:
    """The first valid date in `text` as ``YYYY-MM-DD``, or None."""
    for match in _DATE.finditer(text):
        iso = _from_match(match, order)
        if iso:
            return iso
    return None


def date_spans(text: str) -> list[tuple[int, int]]:
    """Where valid dates sit in `text`; amounts are not read from inside them."""
    return [m.span() for m in _DATE.finditer(text) if _from_match(m, DateOrder.DAY_FIRST)]


def date_order_of(text: str, default: DateOrder = DateOrder.DAY_FIRST) -> DateOrder:
    """Month-first when the document's unambiguous slash/dash dates are all month-first,
    day-first when any is day-first, `default` when none is unambiguous."""
    day_first = month_first = 0
    for match in _SLASH_DATE.finditer(text):
        first, second = int(match[1]), int(match[2])
        if first > 12 >= second:
            day_first += 1
        elif second > 12 >= first:
            month_first += 1
    if day_first:
        return DateOrder.DAY_FIRST
    return DateOrder.MONTH_FIRST if month_first else default


_SYMBOLS = {
    "US$": "USD",
    "CA$": "CAD",
    "C$": "CAD",
    "AU$": "AUD",
    "A$": "AUD",
    "NZ$": "NZD",
    "HK$": "HKD",
    "S$": "SGD",
    "R$": "BRL",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "Rs.": "INR",
    "Rs": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "₺": "TRY",
    "₪": "ILS",
    "₱": "PHP",
    "₫": "VND",
    "zł": "PLN",
}
CURRENCY_CODES = frozenset(
    (
        *("USD", "EUR", "GBP", "CHF", "JPY", "CNY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK"),
        *("PLN", "CZK", "HUF", "RON", "BGN", "INR", "BRL", "MXN", "ZAR", "SGD", "HKD", "KRW"),
        *("TRY", "RUB", "AED", "SAR", "ILS", "THB", "IDR", "MYR", "PHP", "VND", "TWD", "ARS"),
        *("CLP", "COP", "PEN", "UAH", "NGN", "KES", "EGP"),
    )
)
_CURRENCY = (
    "(?:"
    # A symbol of letters ("Rs", "zł") stands apart from a word, as a code does.
    + "|".join(
        (r"(?<![A-Za-z])" if symbol[0].isalpha() else "") + re.escape(symbol)
        for symbol in sorted(_SYMBOLS, key=len, reverse=True)
    )
    + r"|(?<![A-Za-z])(?:"
    + "|".join(sorted(CURRENCY_CODES))
    + r")(?![A-Za-z]))"
)
# Indian grouping ("1,23,456.78": lakhs and crores) has pairs of digits before the last three.
# A grouped number needs groups of exactly three digits; the group separator must repeat as itself,
# which is what tells "1.234,50" (dot groups) from "1,234.50" (comma groups). A plain space groups
# digits only before a decimal comma ("1 234,50"), so "Qty 3 100.00" is not read as 3100.
_AMOUNT = re.compile(
    rf"""
    (?<![\w.,\-\u2212])
    (?P<open>\()?
    (?P<sign1>[-\u2212])?
    (?:(?P<cur1>{_CURRENCY})\s{{0,2}})?
    (?P<sign2>[-\u2212])?
    (?P<num>\d{{1,3}}(?:\ \d{{3}})+,\d+
           |\d{{1,2}}(?:,\d{{2}})+,\d{{3}}(?:\.\d+)?
           |\d{{1,3}}(?P<grp>[,.'\u2019\u00a0\u202f\u2009])\d{{3}}(?:(?P=grp)\d{{3}})*(?:[.,]\d+)?
           |\d+(?:[.,]\d+)?)
    (?!\d|[.,]\d|\s?%)
    (?:\s?(?P<cur2>{_CURRENCY}))?
    (?P<close>\))?
    (?P<sign3>[-\u2212](?![\w.,]))?  # "8,79-": accounting software writes credits so
    """,
    re.VERBOSE,
)
_CURRENCY_ALONE = re.compile(_CURRENCY)


@dataclass(frozen=True, slots=True)
class Amount:
    value: str
    currency: str | None


# Currencies written as words, as a "Currency" or "Währung" cell may say them.
_CURRENCY_NAMES = {
    **dict.fromkeys(("euro", "euros", "eur"), "EUR"),
    **dict.fromkeys(("us dollar", "us dollars", "dollar", "dollars", "dólar"), "USD"),
    **dict.fromkeys(("pound", "pounds", "pound sterling", "sterling", "gbp"), "GBP"),
    **dict.fromkeys(("swiss franc", "swiss francs", "franken", "franc suisse"), "CHF"),
}
# A bare "$" is the US dollar unless the document names another dollar.
DOLLARS = frozenset({"USD", "CAD", "AUD", "NZD", "HKD", "SGD", "MXN", "ARS", "CLP", "COP", "TWD"})


def currencies_in(text: str) -> list[tuple[str, str]]:
    """Every currency symbol or ISO code in `text`, as (what is written, ISO 4217 code)."""
    return [(m.group(), _SYMBOLS.get(m.group(), m.group())) for m in _CURRENCY_ALONE.finditer(text)]


def currency_named(text: str) -> str | None:
    """The ISO code a short text names: a code, a symbol or a currency's name ("Euro")."""
    folded = " ".join(text.casefold().split()).strip(" .")
    return _CURRENCY_NAMES.get(folded) or currency_in(text)


def currency_in(text: str) -> str | None:
    """The first currency symbol or ISO code in `text` (used on a value's label and line)."""
    match = _CURRENCY_ALONE.search(text)
    if not match:
        return None
    token = match.group()
    return _SYMBOLS.get(token, token)


def without_currency(text: str) -> str:
    """`text` with its currency symbols and codes left out."""
    return _CURRENCY_ALONE.sub("", text)


_INDIAN = re.compile(r"\d{1,2}(?:,\d{2})+,\d{3}(?:\.\d+)?")


def _digits(match: re.Match[str], has_currency: bool) -> str | None:
    num, group = match["num"], match["grp"]
    if _INDIAN.fullmatch(num):
        num, group = num.replace(",", ""), None
    last = max(num.rfind("."), num.rfind(","))
    decimal_sep = num[last] if last >= 0 else None
    if group and decimal_sep == group:
        single_group = num.count(group) == 1
        integer_part = num[:last]
        # "0,500" cannot be grouping; a lone dot group ("1.234") is a decimal point unless a
        # currency says it is money, since money is almost never written with three decimals.
        if integer_part == "0" or (group == "." and single_group and not has_currency):
            decimal_sep = group
            group = None
        else:
            decimal_sep = None
    if decimal_sep:
        head, tail = num[:last], num[last + 1 :]
    else:
        head, tail = num, ""
    head = re.sub(r"\D", "", head)
    text = f"{head}.{tail}" if tail else head
    try:
        return format(Decimal(text), "f")
    except InvalidOperation:
        return None


def parse_amount(text: str, context: str = "") -> Amount | None:
    """The amount `text` holds, or None.

    Dates, percentages and amounts inside a parenthesis ("(incl. VAT 40.39)") are passed over.
    Amounts written with a currency or with decimals are preferred to bare whole numbers. When
    several follow each other with nothing but space between them, they are a row of columns
    ("Total 1 278.61 40.39 319.00": quantity, net, tax, gross), and the last is the row's amount;
    a word between them ends the row ("1.234,50 € incl. 197,11 € VAT" is 1234.50).
    `context` (the label and the whole line) is searched for a currency when the amount itself
    carries none, as in "Total (EUR): 1.234,50".
    """
    chosen = _row_amount(text)
    if chosen is None:
        return None
    token = chosen["cur1"] or chosen["cur2"]
    currency = _SYMBOLS.get(token, token) if token else currency_in(context)
    digits = _digits(chosen, currency is not None)
    if digits is None:
        return None
    negative = bool(
        chosen["sign1"]
        or chosen["sign2"]
        or chosen["sign3"]
        or (chosen["open"] and chosen["close"])
    )
    if negative and Decimal(digits) != 0:
        digits = f"-{digits}"
    return Amount(value=digits, currency=currency)


_PARENTHESIS = re.compile(r"\([^()]*\)")
_BETWEEN_COLUMNS = re.compile(r"[\s|]*")


def _row_amount(text: str) -> re.Match[str] | None:
    skipped = date_spans(text)
    matches = []
    for match in _AMOUNT.finditer(text):
        if any(start <= match.start("num") < end for start, end in skipped):
            continue
        matches.append(match)
    if len(matches) > 1:
        inside = [m.span() for m in _PARENTHESIS.finditer(text)]
        outside = [
            m
            for m in matches
            if not any(s < m.start("num") < e for s, e in inside) or (m["open"] and m["close"])
        ]
        matches = outside or matches
    if len(matches) <= 1:
        return matches[0] if matches else None
    written = [m for m in matches if m["cur1"] or m["cur2"] or not m["num"].isdigit()]
    row = written or matches
    chosen = row[0]
    for match in row[1:]:
        if not _BETWEEN_COLUMNS.fullmatch(text, chosen.end(), match.start()):
            break
        chosen = match
    return chosen


_TRUE = frozenset(
    {"yes", "y", "true", "t", "x", "checked", "ticked", "on", "1", "[x]", "ja", "oui", "si", "sí"}
    | {"✓", "✔", "☑", "☒", "[✓]", "[✔]"}
)
_FALSE = frozenset(
    {"no", "n", "false", "f", "unchecked", "unticked", "off", "0", "nein", "non", "none"}
    | {"☐", "[]", "[ ]"}
)
_BOOLEAN_TOKEN = re.compile(r"\[\s*[xX✓✔]?\s*\]|[☐☑☒✓✔]|[^\W_]+")


def parse_boolean(text: str) -> bool | None:
    """yes/no, true/false, x, checked/unchecked and checkbox glyphs; None when it says neither."""
    folded = text.strip().casefold()
    if folded in _TRUE or folded.replace(" ", "") in _TRUE:
        return True
    if folded in _FALSE or folded.replace(" ", "") in _FALSE:
        return False
    match = _BOOLEAN_TOKEN.search(folded)
    if not match:
        return None
    token = re.sub(r"\s+", "", match.group())
    if token in _TRUE:
        return True
    if token in _FALSE:
        return False
    return None


_LIST_SEPARATOR = re.compile(r"[;,]")


def parse_list(text: str) -> list[str]:
    """Items separated by commas or semicolons, trimmed, empty items dropped."""
    return [item.strip() for item in _LIST_SEPARATOR.split(text) if item.strip()]
