"""Values found without a label beside them, for the few concepts where the document says what
they are in another way; tried only when no label gave a value.

- a VAT number after a bare tax label ("TVA FR12345678901", "BTW NL123456789B01"), or anywhere
  on a line after a VAT word ("Schwital Group USt-IdNr. DE452228815 IBAN ..."): its shape, a
  country prefix and digits, tells it from a tax amount;
- a due date in a sentence that says payment is due ("Zahlbar innerhalb von 14 Tagen bis zum
  28.03.2024", "Please pay by 28 March 2024"), when it holds exactly one date;
- the document's date: the first line of the first page holding one date and no label (a
  receipt's "12/03/24 14:22", a letter's "Berlin, 12. März 2024"), or one whose label names
  the value before the date (a receipt's "Beleg-Nr. RE-2025-0123 08.08.2025 08:40").
"""

from __future__ import annotations

import re
from dataclasses import replace

from extraction.fields import FieldSpec
from extraction.local.lines import DIGIT, Candidate, DocumentIndex
from extraction.local.matching import (
    RUN_INTO_NUMBER,
    Wanted,
    choose,
    is_date_then_time,
    starts_with_known_label,
    wanted_by,
)
from extraction.local.vocabulary import Shape
from extraction.normalise import date_spans

# A VAT number: a country prefix and 8 to 12 digits or letters, at least six of them digits.
_VAT_NUMBER = re.compile(r"(?:[A-Z]{2}|EL)[\s.]?(?=[0-9A-Z\s.]*\d{6})[0-9A-Z][0-9A-Z\s.]{7,14}")
_VAT_IN_LINE = re.compile(
    r"\b(?:USt|UID|VAT|TVA|BTW|IVA|MwSt|CIF|NIF)\b[^\n]{0,25}?"
    r"\b(?P<number>(?:[A-Z]{2}|EL)(?=[0-9A-Z]*\d{6})[0-9A-Z]{8,12})\b",
    re.IGNORECASE,
)
# Words that say a date in the same sentence is when payment is due.
DUE_WORDS = re.compile(
    r"\b(?:due|payable|pay\s+by|please\s+pay|zahlbar|fällig|zahlen\s+sie|échéance|echeance"
    r"|à\s+régler|a\s+regler|payer\s+avant|vervaldatum|betalen\s+voor|uiterlijk|vencimiento"
    r"|pagar\s+antes|pagadero|scadenza|pagare\s+entro|pagamento\s+entro)\b",
    re.IGNORECASE,
)
# A label's colon; not one between the hours and minutes of a time OCR split ("15: 23").
_LABEL_COLON = re.compile(r"(?<!\d):(?:\s|$)|(?<=\d):(?:\s*$|\s+(?!\d{2}\b))")
# A month name glued to the number before it by a text layer that lost the gap
# ("INV02046January 8, 2023").
_RUN_INTO_REACH = 120  # characters of a line where a date run into a number is looked for
_GLUED_MONTH = re.compile(r"(?<=\d)(?=[A-Z][a-z])")


def unlabelled(index: DocumentIndex, wanted: Wanted) -> Candidate | None:
    """The field's value found without a label of its own, for the concepts that have one."""
    if wanted.concept == "vat id":
        return _vat_number(index, wanted)
    if wanted.concept == "due date" and wanted.shape is Shape.DATE:
        return _due_in_a_sentence(index)
    if wanted.concept == "date" and wanted.shape is Shape.DATE:
        return _undated_line(index)
    return None


def _vat_number(index: DocumentIndex, wanted: Wanted) -> Candidate | None:
    tax = replace(
        wanted_by(FieldSpec(name="vat", type="string", description="")),
        spec=wanted.spec,
        shape=wanted.shape,
        strict=False,
    )

    def vat_number(value: str) -> str | None:
        match = _VAT_NUMBER.fullmatch(value.strip())
        return match.group() if match else None

    chosen = choose(index, tax, vat_number)
    if chosen is not None:
        return chosen
    for number, line in enumerate(index.lines):
        match = _VAT_IN_LINE.search(line)
        if match:
            return Candidate(0, number, 0, "", match["number"])
    return None


def _due_in_a_sentence(index: DocumentIndex) -> Candidate | None:
    for number, line in enumerate(index.lines):
        if not DUE_WORDS.search(line):
            continue
        spans = date_spans(line)
        if len(spans) == 1:
            start, end = spans[0]
            return Candidate(0, number, 0, "", line[start:end])
    return None


def _undated_line(index: DocumentIndex) -> Candidate | None:
    for number, line in enumerate(index.lines):
        if index.page(number) != 1:
            break
        spans = _dates_in(line)
        if len(spans) != 1 or _LABEL_COLON.search(line) or DUE_WORDS.search(line):
            continue
        start, end = spans[0]
        labelled = any(starts_with_known_label(index, cell) for cell in index.cells[number])
        if labelled and not _after_a_value(line[:start]):
            continue  # a labelled date is another date: delivery, order, due
        return Candidate(0, number, 0, "", line[start:end])
    return None


def _after_a_value(before: str) -> bool:
    """Whether the date follows a labelled value (an identifier with a digit) rather than its
    own label: "Receipt no. INV02046 | 8 March 2024", not "Delivery date 8 March 2024"."""
    words = before.split()
    return bool(words) and DIGIT.search(words[-1]) is not None and len(words) > 1


def _dates_in(line: str) -> list[tuple[int, int]]:
    spans = date_spans(line)
    if spans:
        return spans
    for glued in _GLUED_MONTH.finditer(line):
        at = glued.start()
        return [(start + at, end + at) for start, end in date_spans(line[at:])]
    # A date and time run into the number before them ("FT 8939/202405/09/2024 08:54").
    for at in range(1, min(len(line), _RUN_INTO_REACH)):
        token = line[:at].split()[-1] if line[:at].split() else ""
        if (
            line[at - 1].isdigit()
            and line[at].isdigit()
            and len(token) >= RUN_INTO_NUMBER
            and is_date_then_time(line[at:])
        ):
            start, end = date_spans(line[at:])[0]
            return [(start + at, end + at)]
    return []
