"""EN 16931 business terms read from the syntaxes that carry them: CII (Factur-X, ZUGFeRD 2,
XRechnung), ZUGFeRD 1's Cross Industry Document, and UBL 2.1 (Peppol BIS, XRechnung).

Elements are found by their local names along fixed paths below a root whose namespace was
checked, so a prefix or a default namespace makes no difference. A term whose element is absent
or does not parse (an amount that is not a number, a date in a format other than 102) is left out:
the field then goes to the batch's engine instead of receiving a guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from lxml import etree

from extraction.einvoice.parsing import INVOICE_ROOTS, Syntax, XmlProblem, name_of


class BT(StrEnum):
    """The business terms Sheaf maps fields to, by their EN 16931 identifiers."""

    NUMBER = "BT-1"
    ISSUE_DATE = "BT-2"
    TYPE_CODE = "BT-3"
    CURRENCY = "BT-5"
    DUE_DATE = "BT-9"
    BUYER_REFERENCE = "BT-10"
    PURCHASE_ORDER = "BT-13"
    PAYMENT_TERMS = "BT-20"
    PRECEDING_INVOICE = "BT-25"
    SELLER_NAME = "BT-27"
    SELLER_VAT_ID = "BT-31"
    BUYER_NAME = "BT-44"
    BUYER_VAT_ID = "BT-48"
    IBAN = "BT-84"
    NET_TOTAL = "BT-109"
    TAX_TOTAL = "BT-110"
    GRAND_TOTAL = "BT-112"
    PAID = "BT-113"
    AMOUNT_DUE = "BT-115"


class Kind(StrEnum):
    TEXT = "text"
    CODE = "code"
    DATE = "date"
    AMOUNT = "amount"


KINDS: dict[BT, Kind] = {
    **{term: Kind.TEXT for term in BT},
    BT.TYPE_CODE: Kind.CODE,
    BT.CURRENCY: Kind.CODE,
    BT.ISSUE_DATE: Kind.DATE,
    BT.DUE_DATE: Kind.DATE,
    **{
        term: Kind.AMOUNT
        for term in (BT.NET_TOTAL, BT.TAX_TOTAL, BT.GRAND_TOTAL, BT.PAID, BT.AMOUNT_DUE)
    },
}

# UNTDID 1001 codes that EN 16931 counts as credit notes: their amounts are stated positive and
# mean money going back, so Sheaf gives them negative, as the printed credit note does.
CREDIT_NOTE_CODES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)


@dataclass(frozen=True)
class Value:
    """One business term: its canonical value and the element's text as the XML writes it."""

    value: str  # ISO date, signed decimal, upper-case code, or text with spaces collapsed
    text: str
    currency: str | None = None  # an amount's currency (its currencyID, else the invoice's)


@dataclass(frozen=True)
class Line:
    """One invoice line (BG-25)."""

    description: Value | None  # BT-153, the item's name
    quantity: Value | None  # BT-129
    unit_price: Value | None  # BT-146, the item's net price
    amount: Value | None  # BT-131, the line's net amount


@dataclass(frozen=True)
class EInvoice:
    syntax: Syntax
    credit_note: bool
    terms: dict[BT, Value]
    lines: tuple[Line, ...]


def read_invoice(root: etree._Element) -> EInvoice:
    """The business terms of a parsed e-invoice; XmlProblem when the root is no invoice."""
    syntax = INVOICE_ROOTS.get(name_of(root))
    if syntax is Syntax.UBL:
        return _Ubl(root).invoice()
    if syntax is Syntax.CII:
        return _Cii(root, _CII_NAMES).invoice()
    if syntax is Syntax.ZUGFERD1:
        return _Cii(root, _ZUGFERD1_NAMES).invoice()
    raise XmlProblem(
        "unsupported_type", f"its root element <{etree.QName(root).localname}> is no invoice"
    )


# ---- finding elements -------------------------------------------------------------------------


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _all(element: etree._Element | None, path: str) -> Iterator[etree._Element]:
    """Elements below `element` along a path of local names ("A/B/C"), in document order."""
    if element is None:
        return
    head, _, rest = path.partition("/")
    for child in element:
        # Comments and PIs were removed when parsing; unresolved entities are not elements.
        if isinstance(child.tag, str) and _local(child) == head:
            if rest:
                yield from _all(child, rest)
            else:
                yield child


def _one(element: etree._Element | None, path: str) -> etree._Element | None:
    return next(_all(element, path), None)


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _plain(element: etree._Element | None) -> Value | None:
    text = _text(element)
    return Value(text, text) if text is not None else None


def _code(element: etree._Element | None) -> Value | None:
    text = _text(element)
    return Value(text.upper(), text) if text is not None else None


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _money_text(number: Decimal) -> str:
    """To the cent, or with every decimal the XML gave when it gave more (unit prices)."""
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        number = number.quantize(Decimal("0.01"))
    return f"{number:f}"


def _quantity(element: etree._Element | None) -> Value | None:
    text = _text(element)
    number = _decimal(text) if text is not None else None
    if text is None or number is None:
        return None
    return Value(f"{number.normalize():f}", text)


class _Reader:
    """What both syntaxes share: amounts signed by the document type, dates made ISO."""

    credit_note = False
    currency: str | None = None

    def amount(self, element: etree._Element | None) -> Value | None:
        text = _text(element)
        number = _decimal(text) if text is not None else None
        if element is None or text is None or number is None:
            return None
        if self.credit_note:
            number = -number
        currency = (element.get("currencyID") or self.currency or "").strip().upper() or None
        return Value(_money_text(number), text, currency)


def _iso_date(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        # xsd:date may carry a time zone ("2024-03-14Z"); the date is the first ten characters.
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


# ---- CII and ZUGFeRD 1 ------------------------------------------------------------------------


@dataclass(frozen=True)
class _CiiNames:
    """Where ZUGFeRD 1 and CII D16B keep the same terms under different names."""

    document: str
    trade: str
    agreement: str
    settlement: str
    totals: str
    order_id: str
    preceding_id: str
    line_delivery: str
    line_agreement: str
    line_settlement: str
    line_totals: str


_CII_NAMES = _CiiNames(
    document="ExchangedDocument",
    trade="SupplyChainTradeTransaction",
    agreement="ApplicableHeaderTradeAgreement",
    settlement="ApplicableHeaderTradeSettlement",
    totals="SpecifiedTradeSettlementHeaderMonetarySummation",
    order_id="BuyerOrderReferencedDocument/IssuerAssignedID",
    preceding_id="InvoiceReferencedDocument/IssuerAssignedID",
    line_delivery="SpecifiedLineTradeDelivery",
    line_agreement="SpecifiedLineTradeAgreement",
    line_settlement="SpecifiedLineTradeSettlement",
    line_totals="SpecifiedTradeSettlementLineMonetarySummation",
)
_ZUGFERD1_NAMES = _CiiNames(
    document="HeaderExchangedDocument",
    trade="SpecifiedSupplyChainTradeTransaction",
    agreement="ApplicableSupplyChainTradeAgreement",
    settlement="ApplicableSupplyChainTradeSettlement",
    totals="SpecifiedTradeSettlementMonetarySummation",
    order_id="BuyerOrderReferencedDocument/ID",
    preceding_id="InvoiceReferencedDocument/ID",
    line_delivery="SpecifiedSupplyChainTradeDelivery",
    line_agreement="SpecifiedSupplyChainTradeAgreement",
    line_settlement="SpecifiedSupplyChainTradeSettlement",
    line_totals="SpecifiedTradeSettlementMonetarySummation",
)


def _cii_date(element: etree._Element | None) -> Value | None:
    """A udt:DateTimeString: only format 102 (CCYYMMDD) names a day."""
    text = _text(element)
    if element is None or text is None or element.get("format", "102") != "102":
        return None
    if len(text) != 8 or not text.isdigit():
        return None
    iso = _iso_date(f"{text[:4]}-{text[4:6]}-{text[6:]}")
    return Value(iso, text) if iso is not None else None


def _cii_vat_id(party: etree._Element | None) -> Value | None:
    for registration in _all(party, "SpecifiedTaxRegistration/ID"):
        if registration.get("schemeID") == "VA":  # "FC" is the national tax number (BT-32)
            return _plain(registration)
    return None


class _Cii(_Reader):
    def __init__(self, root: etree._Element, names: _CiiNames) -> None:
        self.root, self.names = root, names
        document = _one(root, names.document)
        self.type_code = _code(_one(document, "TypeCode"))
        self.credit_note = self.type_code is not None and self.type_code.value in CREDIT_NOTE_CODES
        trade = _one(root, names.trade)
        self.trade = trade
        self.agreement = _one(trade, names.agreement)
        self.settlement = _one(trade, names.settlement)
        currency = _code(_one(self.settlement, "InvoiceCurrencyCode"))
        self.currency = currency.value if currency else None

    def invoice(self) -> EInvoice:
        names, agreement, settlement = self.names, self.agreement, self.settlement
        document = _one(self.root, names.document)
        seller = _one(agreement, "SellerTradeParty")
        buyer = _one(agreement, "BuyerTradeParty")
        totals = _one(settlement, names.totals)
        terms_of_payment = list(_all(settlement, "SpecifiedTradePaymentTerms"))
        found: dict[BT, Value | None] = {
            BT.NUMBER: _plain(_one(document, "ID")),
            BT.ISSUE_DATE: _cii_date(_one(document, "IssueDateTime/DateTimeString")),
            BT.TYPE_CODE: self.type_code,
            BT.CURRENCY: _code(_one(settlement, "InvoiceCurrencyCode")),
            BT.DUE_DATE: next(
                filter(
                    None,
                    (
                        _cii_date(_one(t, "DueDateDateTime/DateTimeString"))
                        for t in terms_of_payment
                    ),
                ),
                None,
            ),
            BT.BUYER_REFERENCE: _plain(_one(agreement, "BuyerReference")),
            BT.PURCHASE_ORDER: _plain(_one(agreement, names.order_id)),
            BT.PAYMENT_TERMS: next(
                filter(None, (_plain(_one(t, "Description")) for t in terms_of_payment)), None
            ),
            BT.PRECEDING_INVOICE: _plain(_one(settlement, names.preceding_id)),
            BT.SELLER_NAME: _plain(_one(seller, "Name")),
            BT.SELLER_VAT_ID: _cii_vat_id(seller),
            BT.BUYER_NAME: _plain(_one(buyer, "Name")),
            BT.BUYER_VAT_ID: _cii_vat_id(buyer),
            BT.IBAN: _plain(
                _one(
                    settlement,
                    "SpecifiedTradeSettlementPaymentMeans/PayeePartyCreditorFinancialAccount/IBANID",
                )
            ),
            BT.NET_TOTAL: self.amount(_one(totals, "TaxBasisTotalAmount")),
            BT.TAX_TOTAL: self.amount(self._tax_total(totals)),
            BT.GRAND_TOTAL: self.amount(_one(totals, "GrandTotalAmount")),
            BT.PAID: self.amount(_one(totals, "TotalPrepaidAmount")),
            BT.AMOUNT_DUE: self.amount(_one(totals, "DuePayableAmount")),
        }
        return EInvoice(
            syntax=INVOICE_ROOTS[name_of(self.root)],
            credit_note=self.credit_note,
            terms={term: value for term, value in found.items() if value is not None},
            lines=tuple(
                self._line(item) for item in _all(self.trade, "IncludedSupplyChainTradeLineItem")
            ),
        )

    def _tax_total(self, totals: etree._Element | None) -> etree._Element | None:
        """BT-110 is the tax total in the invoice's currency; a second TaxTotalAmount in another
        currency is BT-111, the tax in the seller's accounting currency."""
        candidates = list(_all(totals, "TaxTotalAmount"))
        for candidate in candidates:
            if (candidate.get("currencyID") or self.currency) == self.currency:
                return candidate
        return candidates[0] if candidates else None

    def _line(self, item: etree._Element) -> Line:
        names = self.names
        return Line(
            description=_plain(_one(item, "SpecifiedTradeProduct/Name")),
            quantity=_quantity(_one(item, f"{names.line_delivery}/BilledQuantity")),
            unit_price=self.amount(
                _one(item, f"{names.line_agreement}/NetPriceProductTradePrice/ChargeAmount")
            ),
            amount=self.amount(
                _one(item, f"{names.line_settlement}/{names.line_totals}/LineTotalAmount")
            ),
        )


# ---- UBL --------------------------------------------------------------------------------------


def _ubl_date(element: etree._Element | None) -> Value | None:
    text = _text(element)
    iso = _iso_date(text)
    return Value(iso, text) if text is not None and iso is not None else None


def _ubl_party(root: etree._Element, role: str) -> etree._Element | None:
    return _one(root, f"{role}/Party")


def _ubl_name(party: etree._Element | None) -> Value | None:
    # BT-27/BT-44 is the legal name; the trading name (PartyName) stands in when it is absent.
    return _plain(_one(party, "PartyLegalEntity/RegistrationName")) or _plain(
        _one(party, "PartyName/Name")
    )


def _ubl_vat_id(party: etree._Element | None) -> Value | None:
    schemes = list(_all(party, "PartyTaxScheme"))
    for scheme in schemes:
        if (_text(_one(scheme, "TaxScheme/ID")) or "").upper() == "VAT":
            return _plain(_one(scheme, "CompanyID"))
    return None


class _Ubl(_Reader):
    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.kind = _local(root)  # Invoice or CreditNote
        self.type_code = _code(_one(root, f"{self.kind}TypeCode"))
        self.credit_note = self.kind == "CreditNote" or (
            self.type_code is not None and self.type_code.value in CREDIT_NOTE_CODES
        )
        currency = _code(_one(root, "DocumentCurrencyCode"))
        self.currency = currency.value if currency else None

    def invoice(self) -> EInvoice:
        root = self.root
        seller = _ubl_party(root, "AccountingSupplierParty")
        buyer = _ubl_party(root, "AccountingCustomerParty")
        totals = _one(root, "LegalMonetaryTotal")
        found: dict[BT, Value | None] = {
            BT.NUMBER: _plain(_one(root, "ID")),
            BT.ISSUE_DATE: _ubl_date(_one(root, "IssueDate")),
            BT.TYPE_CODE: self.type_code,
            BT.CURRENCY: _code(_one(root, "DocumentCurrencyCode")),
            # A UBL 2.1 CreditNote has no DueDate: it sits with the payment means.
            BT.DUE_DATE: _ubl_date(_one(root, "DueDate"))
            or _ubl_date(_one(root, "PaymentMeans/PaymentDueDate")),
            BT.BUYER_REFERENCE: _plain(_one(root, "BuyerReference")),
            BT.PURCHASE_ORDER: _plain(_one(root, "OrderReference/ID")),
            BT.PAYMENT_TERMS: _plain(_one(root, "PaymentTerms/Note")),
            BT.PRECEDING_INVOICE: _plain(
                _one(root, "BillingReference/InvoiceDocumentReference/ID")
            ),
            BT.SELLER_NAME: _ubl_name(seller),
            BT.SELLER_VAT_ID: _ubl_vat_id(seller),
            BT.BUYER_NAME: _ubl_name(buyer),
            BT.BUYER_VAT_ID: _ubl_vat_id(buyer),
            BT.IBAN: _plain(_one(root, "PaymentMeans/PayeeFinancialAccount/ID")),
            BT.NET_TOTAL: self.amount(_one(totals, "TaxExclusiveAmount")),
            BT.TAX_TOTAL: self.amount(self._tax_total()),
            BT.GRAND_TOTAL: self.amount(_one(totals, "TaxInclusiveAmount")),
            BT.PAID: self.amount(_one(totals, "PrepaidAmount")),
            BT.AMOUNT_DUE: self.amount(_one(totals, "PayableAmount")),
        }
        quantity = "CreditedQuantity" if self.kind == "CreditNote" else "InvoicedQuantity"
        return EInvoice(
            syntax=Syntax.UBL,
            credit_note=self.credit_note,
            terms={term: value for term, value in found.items() if value is not None},
            lines=tuple(
                Line(
                    description=_plain(_one(line, "Item/Name")),
                    quantity=_quantity(_one(line, quantity)),
                    unit_price=self.amount(_one(line, "Price/PriceAmount")),
                    amount=self.amount(_one(line, "LineExtensionAmount")),
                )
                for line in _all(root, f"{self.kind}Line")
            ),
        )

    def _tax_total(self) -> etree._Element | None:
        """BT-110: the TaxTotal in the invoice's currency (another one in the accounting
        currency is BT-111)."""
        amounts = list(_all(self.root, "TaxTotal/TaxAmount"))
        for amount in amounts:
            if (amount.get("currencyID") or self.currency) == self.currency:
                return amount
        return amounts[0] if amounts else None
