"""Parties: names of companies and people told apart from sentences, titles and addresses, and the
supplier (the party that issued the document) found where invoices put it.

The supplier is looked for, in order of trust, under a label ("Supplier", "Lieferant",
"Fournisseur", ...; the engine does that), then among the party names of the document, each
weighed by what speaks for it being the issuer:

- a legal form at its end (GmbH, B.V., Ltd, Inc., SARL, S.r.l., ...);
- being written more than once (letterhead and footer both carry the issuer's name);
- standing at the top of the first page, first among the names there (the letterhead or the
  sender block), and in a larger font than the page's text;
- standing on or just above the line of a VAT number or a company register entry (the
  issuer's footer: "ACME GmbH | Amtsgericht Berlin HRB 12345 | USt-IdNr. DE123456789").

Names in the buyer's block (under "Bill to", "Rechnungsempfänger", "Client", "Klant", ...) and
names given as the buyer anywhere are never the supplier. A name with nothing but its place to
speak for it must be the first name of the first page's top; with no evidence at all, there is
no supplier rather than a guess, and in a document that bills nothing (no total, no invoice
number) a heading, at the top or repeated on every page, is not taken for one.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from extraction.local.layout import Layout
from extraction.local.lines import KNOWN_KEYS, DocumentIndex, is_known_label, label_key
from extraction.normalise import parse_date

LEGAL_FORM = re.compile(
    r"""(?:^|(?<=[\s,]))(?:
        GmbH\ &\ Co\.?\ KG|gGmbH|GmbH|mbH|AG|KGaA|KG|OHG|GbR|UG(?:\ \(haftungsbeschränkt\))?
        |e\.\ ?K\.|e\.\ ?V\.|SE|B\.\ ?V\.|BV|N\.\ ?V\.|NV|V\.O\.F\.|VOF|BVBA|SPRL|SRL|CVBA
        |Pty\.?\ Ltd\.?|Pvt\.?\ Ltd\.?|Private\ Limited|Ltd\.?|Limited|PLC|plc|LLP|LLC|L\.L\.C\.
        |Inc\.?|Incorporated|Corp\.?|Corporation|Co\.|Company
        |S\.A\.S\.U?|SASU|SAS|S\.A\.R\.L\.|SARL|EURL|SNC|SCI|S\.A\.U\.|S\.A\.|SA
        |S\.L\.U?\.?|SLU|SL|S\.L\.N\.E\.?|S\.L\.L\.|S\.A\.T\.|S\.\ ?Coop\.?|S\.\ ?Com\.|Srls?|SpA
        |(?i:s\.r\.l\.s?|s\.p\.a\.?|s\.a\.s\.|s\.n\.c\.|b\.v\.|n\.v\.|s\.a\.|s\.l\.|e\.\ ?[kg]\.)
        |SPA|A/S|ApS|AB|Oy|AS|sp\.\ z\ o\.o\.
    )\.?$""",
    re.VERBOSE,
)
# Words that may be lower case inside a name ("Société Générale des Eaux", "Schön & Söhne").
_CONNECTORS = frozenset(
    {"and", "und", "et", "en", "y", "e", "&", "+", "of", "the", "de", "du", "des", "la", "le"}
    | {"les", "d", "l", "van", "der", "den", "het", "von", "zu", "für", "di", "del", "della"}
    | {"da", "do", "dos", "das", "el", "los", "las", "sur", "am", "im", "an", "auf", "s", "'s"}
    # "e figli", "et fils", "e hijos", "en zonen": a family firm's name ends with its sons
    | {"figli", "fils", "hijos", "zonen", "sons", "söhne"}
    # Dutch names start with their tussenvoegsel: "ter Horst", "'t Hoen", "die Pelser"
    | {"ter", "ten", "te", "'t", "op", "die"}
)
# What a document calls itself, in the six languages: a title, never a party.
_TITLES = frozenset(
    {"invoice", "tax invoice", "sales invoice", "commercial invoice", "proforma invoice"}
    | {"pro forma invoice", "receipt", "sales receipt", "credit note", "debit note", "statement"}
    | {"quote", "quotation", "estimate", "order confirmation", "delivery note", "bill"}
    | {"credit memo", "debit memo"}
    | {"rechnung", "quittung", "kassenbon", "beleg", "gutschrift", "lieferschein", "angebot"}
    | {"auftragsbestätigung", "proforma rechnung", "facture", "reçu", "avoir", "devis"}
    | {"bon de livraison", "facture proforma", "factuur", "kwitantie", "bon", "creditnota"}
    | {"offerte", "factura", "recibo", "ticket", "albarán", "presupuesto", "factura proforma"}
    | {"fattura", "ricevuta", "scontrino", "nota di credito", "preventivo", "original"}
    | {"copy", "duplicate", "kopie", "copie", "duplicado", "copia", "page", "seite", "total"}
)
_DASHES = "-\u2013\u2014"
# A colon ends a label, not a name; questions, brackets and control characters are not names.
_NOT_IN_NAMES = re.compile(r"[:?!\[\]{}<>=_°º\x00-\x1f\x7f]")
# A lone full stop between spaces is a middle dot as OCR reads it ("ACME SPA . Via Roma 5").
_SEGMENT = re.compile(rf"\s+[{_DASHES}]\s+|\s*[·•|;]\s*|,\s+|\s+\.\s+")
_WEB = re.compile(r"@|(?i:www\.|https?:)|\.(?:com|de|fr|nl|es|it|eu|net|org)\b")
_LETTERS = re.compile(r"[^\W\d_]")
# Tax and company-register identifiers the issuer prints beside its name.
_REGISTERED = re.compile(
    r"\b(?:USt|UID|VAT|TVA|BTW|IVA|Steuer-?\s?Nr|Steuernummer|St\.?-?Nr|HRB|HRA|Amtsgericht"
    r"|Handelsregister|Registergericht|KvK|SIRET|SIREN|RCS|CIF|NIF|P\.\s?IVA|Partita|REA"
    r"|Company\s(?:No|Number|Reg)|Registered\sin|ABN|EIN|GSTIN)\b"
)
# The number such a mention names: five digits or more, never an amount ("IVA (21 %) 43,75").
_REGISTER_NUMBER = re.compile(r"[A-Z]{0,3}\d[\d ./-]*\d[A-Za-z0-9]*")
_AMOUNT_END = re.compile(r"[.,]\d{2}$")
_REGISTER_REACH = 40  # characters after the mention
# "N°" of "N° TVA", left behind when a name is cut before its register mention.
_NUMBER_MARK = re.compile(r"\s+(?:N°|Nº|n°|No\.?|Nr\.?|Num[eé]ro|Número|#)\s*$")
_BANK_DETAILS = re.compile(r"\b(?:IBAN|BIC|SWIFT)\b")
# A bank named in the payment details is not the issuer ("Commerzbank AG", "Sparkasse Köln"),
# though a bank's own letterhead is.
_BANK = re.compile(r"bank\b|sparkasse\b|\b(?:Banque|Banca|Banco)\b", re.I)
_PAYMENT_DETAILS = re.compile(
    r"\b(?:IBAN|BIC|SWIFT|Konto|Kontonummer|Bankverbindung|Bank\s?details|account|compte"
    r"|rekening|cuenta|conto|BLZ|sort\s?code|routing)\b",
    re.I,
)
_PAYMENT_REACH = 2  # lines either side of payment details
# Where an address line starts or ends: the street of "Viale Ivo, 77" or "12 Rue de la Paix".
_STREET_WORD = re.compile(
    r"^(?:via|viale|piazza|piazzale|corso|borgo|largo|vicolo|strada|calle|avenida|avda\.?"
    r"|paseo|plaza|carrer|camino|carretera|ronda|rambla|rue|avenue|boulevard|bd|chemin|allée"
    r"|impasse|quai|route)\s"
    r"|(?:\s|^)(?:street|road|lane|avenue|drive)$|(?:straße|strasse|str\.|weg|gasse|platz|allee"
    r"|straat|laan|plein|gracht|kade)$",
    re.I,
)
# A street and its house number: "177 Ball Locks", "Ceylinlaan 18", "Flat 59, Miller Green",
# "Avenida de Eufemia Molins 85 Puerta 5".
_STREET_LINE = re.compile(
    r"^\d{1,5}[A-Za-z]?,?\s+[^\W\d_]{2,}|^[^\W\d_][^:\d]*\s\d{1,5}[A-Za-z]?(?:,|\s|$)"
)

_MOST_WORDS = 8
_MIN_SCORE = 35
_LETTERHEAD, _TOP = 35, 15
_LEGAL, _REPEATED, _PROMINENT, _BESIDE_VAT = 50, 20, 15, 40
_TOP_SHARE = 0.25  # the top quarter of the first page is its letterhead
_TOP_LINES = 4  # without word boxes, its first lines are


def folded(name: str) -> str:
    """A name compared without case, accents and punctuation."""
    text = unicodedata.normalize("NFKD", name.casefold())
    return " ".join("".join(c for c in text if c.isalnum() or c.isspace()).split())


def _segments(text: str) -> list[str]:
    """`text` cut where a name ends ("ACME GmbH · Hauptstr. 5"), keeping ", Inc." with its name
    and the partners of a firm together ("Fletcher, White and Watts"): a part after a comma
    belongs to the name before it while that has no legal form yet and the part is words
    without digits."""
    parts = [part.strip() for part in _SEGMENT.split(text) if part and part.strip()]
    commas = [match.group().strip() == "," for match in _SEGMENT.finditer(text)]
    joined: list[str] = []
    for number, part in enumerate(parts):
        after_comma = number > 0 and number - 1 < len(commas) and commas[number - 1]
        if joined and (
            LEGAL_FORM.fullmatch(part)
            or (
                after_comma
                and not LEGAL_FORM.search(joined[-1])
                and not any(char.isdigit() for char in part)
                and len(f"{joined[-1]} {part}".split()) <= _MOST_WORDS
            )
        ):
            joined[-1] = f"{joined[-1]}, {part}"
        else:
            joined.append(part)
    return joined


@lru_cache(maxsize=8192)
def party_name(text: str, *, labelled: bool = False) -> str | None:
    """The party name `text` starts with ("ACME GmbH" of "ACME GmbH, Hauptstr. 5, Berlin"), or
    None when it is a sentence, a label, a title, an address, a date or a number.

    A name found without a label may hold no lower-case word but connectors ("des", "und");
    under a label ("Customer:") up to two are allowed ("Cheda-Morricone e figli", "SDU
    uitgevers"), since the label already says a party follows.
    """
    segments = _segments(text)
    if not segments:
        return None
    # "Ltd." keeps its full stop; a name without a legal form loses a sentence's.
    name = segments[0].strip(" ,:;" + _DASHES)
    if not LEGAL_FORM.search(name):
        name = name.rstrip(".")
    if not 2 <= len(name) <= 80 or _NOT_IN_NAMES.search(name) or _WEB.search(name):
        return None
    words = name.split()
    legal = LEGAL_FORM.search(name) is not None
    if len(words) >= 4 and sum(len(word) == 1 for word in words) > 0.6 * len(words):
        return None  # letter-spaced: "I N V O I C E"
    if len(words) > _MOST_WORDS or len(_LETTERS.findall(name)) < 2:
        return None
    if any(char.isdigit() for char in name) and not legal:
        return None  # a street, a postcode, a phone number, an invoice number
    lower = 0
    legal_form = LEGAL_FORM.search(name)
    bare_name = name[: legal_form.start()] if legal_form else name
    for word in bare_name.split():
        bare = word.strip(".,()'\"")
        if (
            bare
            and bare == bare.lower()
            and bare.isalpha()
            and bare not in _CONNECTORS
            and not LEGAL_FORM.fullmatch(word)
        ):
            lower += 1
    if lower > (2 if labelled else 0) or lower >= len(bare_name.split() or words):
        return None  # lower-case words: a sentence, not a name
    if all(word.casefold() in _CONNECTORS or LEGAL_FORM.fullmatch(word) for word in words):
        return None  # "le" of "Spett.le", "GmbH" alone
    if (
        folded(name) in _TITLES
        or folded(name).replace(" ", "") in _TITLES
        or is_known_label(name)
        or parse_date(name)
    ):
        return None
    return name


@dataclass
class _Seen:
    name: str
    lines: list[int]

    @property
    def line(self) -> int:
        return self.lines[0]


def _name_texts(cell: str) -> list[str]:
    """Where a name may stand in a cell: at its start, and before a register or bank mention
    the text joined onto it ("Schwital Group USt-IdNr. DE452228815 IBAN ...")."""
    texts = [cell]
    mention = _REGISTERED.search(cell) or _BANK_DETAILS.search(cell)
    if mention and mention.start() > 0:
        texts.append(_NUMBER_MARK.sub("", cell[: mention.start()]))
    return texts


def find_supplier(
    index: DocumentIndex,
    layout: Layout,
    *,
    buyers: list[tuple[int, str]],
    vat_lines: list[int],
    billing: bool,
) -> tuple[str, int] | None:
    """The issuing party's name and the line it stands on, or None.

    `buyers` are (line, value) of the buyer's labelled values; `vat_lines` the lines of VAT
    numbers. Where the document bills nothing (`billing` False: no total, no invoice number), a
    name at the top of its first page or written twice is only a heading, so neither counts.
    """
    seen = _party_names(index, layout, buyers)
    registered = sorted(
        {*vat_lines, *(n for n, line in enumerate(index.lines) if _registration(line))}
    )
    if not seen:
        return None
    top = [key for key, item in seen.items() if billing and _at_top(index, layout, item.line)]
    top.sort(key=lambda key: seen[key].line)
    prominent = _prominent_lines(index, layout) if billing else set()
    cells = _cells_by_first_word(index) if billing else {}
    scored = []
    for key, item in seen.items():
        score = _LEGAL if LEGAL_FORM.search(item.name) else 0
        if billing:
            score += _REPEATED * min(len(item.lines) - 1 + _run_on(cells, key, item), 2)
        if key in top:
            score += _LETTERHEAD if key == top[0] else _TOP
        if item.line in prominent:
            score += _PROMINENT
        if any(_beside(index, at, line) for at in item.lines for line in registered):
            score += _BESIDE_VAT
        scored.append((score, -item.line, item))
    score, _, best = max(scored, key=lambda entry: (entry[0], entry[1]))
    return (best.name, best.line) if score >= _MIN_SCORE else None


def _party_names(
    index: DocumentIndex, layout: Layout, buyers: list[tuple[int, str]]
) -> dict[str, _Seen]:
    """Every party name of the document that may be the issuer, by its folded form, with the
    lines it stands on: not the buyer's, not a bank's in the payment details, not a street or
    the town of an address."""
    buyer_names = {folded(name) for _, value in buyers if (name := party_name(value))}
    blocked = _buyer_blocks(index, layout, buyers)
    payment = [n for n, line in enumerate(index.lines) if _PAYMENT_DETAILS.search(line)]
    seen: dict[str, _Seen] = {}
    for number, cells in enumerate(index.cells):
        for cell_number, cell in enumerate(cells):
            if (number, cell_number) in blocked:
                continue
            following = cells[cell_number + 1] if cell_number + 1 < len(cells) else ""
            if LEGAL_FORM.fullmatch(following):
                cell = f"{cell} {following}"  # "ACME  GmbH", its legal form set apart
            for text in _name_texts(cell):
                name = party_name(text)
                if name is None or _BANK_DETAILS.search(name):
                    continue
                if _BANK.search(name) and any(
                    abs(number - line) <= _PAYMENT_REACH and index.page(line) == index.page(number)
                    for line in payment
                ):
                    continue  # a bank named in the payment details is not the issuer
                if not LEGAL_FORM.search(name) and (
                    _STREET_WORD.search(name) or _under_a_street(index, layout, number, cell_number)
                ):
                    continue  # a street, or the town of an address
                key = folded(name)
                if key in buyer_names:
                    break
                if key in seen:
                    seen[key].lines.append(number)
                else:
                    seen[key] = _Seen(name, [number])
                break
    return seen


def _cells_by_first_word(index: DocumentIndex) -> dict[str, list[tuple[int, str]]]:
    """Every cell of the document, folded, with its line, filed under its first word."""
    found: dict[str, list[tuple[int, str]]] = {}
    for number, cells in enumerate(index.cells):
        for cell in cells:
            text = folded(cell)
            if text:
                found.setdefault(text.split(maxsplit=1)[0], []).append((number, text))
    return found


def _run_on(cells: dict[str, list[tuple[int, str]]], key: str, item: _Seen) -> int:
    """1 when the name starts a cell of another line that runs on into more words (a footer's
    "ACME Consulting Hauptstr. 5" whose separators were lost), else 0."""
    first = key.split(maxsplit=1)[0] if key else ""
    for number, text in cells.get(first, ()):
        if number not in item.lines and text.startswith(key + " "):
            return 1
    return 0


def _registration(line: str) -> bool:
    """Whether the line names a tax or company-register number: a mention and its number."""
    for mention in _REGISTERED.finditer(line):
        end = mention.end() + _REGISTER_REACH
        for token in _REGISTER_NUMBER.finditer(line, mention.end(), end):
            number = token.group().strip()
            if number[0].isdigit() and _AMOUNT_END.search(number):
                continue
            if sum(char.isdigit() for char in number) >= 5:
                return True
    return False


def _under_a_street(index: DocumentIndex, layout: Layout, line: int, cell: int) -> bool:
    """Whether the cell stands right under a street and house number, in the same column: the
    town of an address ("177 Ball Locks" over "Ambertown"), not a party."""
    if line == 0 or index.page(line - 1) != index.page(line):
        return False
    above, text = index.cells[line - 1], index.cells[line][cell]
    row, row_above = layout.row(line), layout.row(line - 1)
    target = next((c for c in row.cells if text in c.text), None) if row is not None else None
    if target is not None and row_above is not None:
        texts = [c.text for c in row_above.cells if c.overlap(target) > 0]
    else:
        texts = [above[cell] if len(above) == len(index.cells[line]) else above[0]]
    return any(
        _STREET_LINE.match(text) is not None
        and not LEGAL_FORM.search(text)
        and label_key(text.split()[0]) not in KNOWN_KEYS
        and parse_date(text) is None
        for text in texts
    )


def _at_top(index: DocumentIndex, layout: Layout, line: int) -> bool:
    if index.page(line) != 1:
        return False
    share = layout.share_down(line)
    if share is not None:
        return share < _TOP_SHARE
    return line < _TOP_LINES


def _prominent_lines(index: DocumentIndex, layout: Layout) -> set[int]:
    """Lines of the first page set larger than most of its text (a letterhead)."""
    heights = {
        line: row.height
        for line in range(len(index.lines))
        if index.page(line) == 1 and (row := layout.row(line)) is not None
    }
    if len(heights) < 3:
        return set()
    common = Counter(round(height) for height in heights.values()).most_common(1)[0][0]
    return {line for line, height in heights.items() if height >= 1.25 * common}


def _beside(index: DocumentIndex, line: int, vat: int) -> bool:
    """The name is on the VAT number's line or at most three lines above it, on its page."""
    return 0 <= vat - line <= 3 and index.page(line) == index.page(vat)


def _buyer_blocks(
    index: DocumentIndex, layout: Layout, buyers: list[tuple[int, str]]
) -> set[tuple[int, int]]:
    """(line, cell) of the buyer's name and address: the labelled value and what stands under it
    (the cells under it in the same column with word boxes; the next three lines without)."""
    blocked: set[tuple[int, int]] = set()
    for line, value in buyers:
        cells = index.cells[line]
        column = next((n for n, cell in enumerate(cells) if value in cell), None)
        row = layout.row(line)
        for following in range(line, min(line + 4, len(index.cells))):
            if index.page(following) != index.page(line):
                break
            below = layout.row(following)
            if row is None or below is None or column is None:
                blocked.update((following, n) for n in range(len(index.cells[following])))
                continue
            if below.top - row.bottom > 4 * row.height:
                break
            target = row.cells[column]
            blocked.update(
                (following, n) for n, cell in enumerate(below.cells) if cell.overlap(target) > 0
            )
    return blocked
