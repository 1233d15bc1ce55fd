"""E-invoice twins of generated invoices: the labels written as EN 16931 XML, in UN/CEFACT CII
(the syntax of Factur-X, ZUGFeRD 2 and XRechnung) and in UBL 2.1 (Peppol), and a Factur-X PDF:
the born-digital PDF with its CII XML embedded as a PDF/A-3 attachment by the `factur-x` library.

For these the XML is the truth; it is written from the labels, so both say the same. Two
conventions a reader must know:

- A credit note's XML states its amounts positive, with type code 381 (CII) or as a UBL
  `CreditNote`; the labels, like the printed page, give them negative.
- The XML carries what the standard asks for; the labels' extras (addresses) are written as
  street line and city only, without a parsed postcode.

The `factur-x` library checks every CII document against the Factur-X EN16931 schema it ships,
and every UBL one against the UBL 2.1 schema, before it is written: nothing is fetched.
"""

from __future__ import annotations

# Writing only: nothing here parses XML, so the stdlib's parser's weaknesses do not apply.
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from unittest import mock

from samples.invoices import InvoiceLabels

RSM = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
QDT = "urn:un:unece:uncefact:data:standard:QualifiedDataType:100"
UBL_INVOICE = "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"
UBL_CREDIT_NOTE = "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"

EN16931 = "urn:cen.eu:en16931:2017"
XRECHNUNG = f"{EN16931}#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PEPPOL = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"

for _prefix, _uri in {
    "rsm": RSM,
    "ram": RAM,
    "udt": UDT,
    "qdt": QDT,
    "cac": CAC,
    "cbc": CBC,
}.items():
    ET.register_namespace(_prefix, _uri)


class EInvoiceFormat(StrEnum):
    FACTURX = "factur-x"  # PDF/A-3 with factur-x.xml (EN16931 profile) embedded
    CII = "cii"  # standalone CII XML (XRechnung's guideline id for German invoices)
    UBL = "ubl"  # standalone UBL 2.1 Invoice or CreditNote (Peppol BIS Billing 3.0 ids)

    @property
    def extension(self) -> str:
        return "pdf" if self is EInvoiceFormat.FACTURX else "xml"


def _money(value: Decimal) -> str:
    return f"{abs(value):.2f}"


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _rate(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _one_line(text: str) -> str:
    return " ".join(text.split("\n"))


def _country(labels: InvoiceLabels) -> str:
    return labels.language.split("-")[1]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def _serialise(root: ET.Element) -> bytes:
    ET.indent(root)
    written: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return written


# ---- CII ------------------------------------------------------------------------------------


def _ram(name: str) -> str:
    return f"{{{RAM}}}{name}"


def _cii_date(parent: ET.Element, tag: str, iso: str) -> None:
    holder = _sub(parent, _ram(tag))
    _sub(holder, f"{{{UDT}}}DateTimeString", iso.replace("-", ""), format="102")


def _cii_party(
    parent: ET.Element, tag: str, name: str, address: str, vat: str, country: str
) -> None:
    party = _sub(parent, _ram(tag))
    _sub(party, _ram("Name"), name)
    lines = address.splitlines()
    postal = _sub(party, _ram("PostalTradeAddress"))
    if lines:
        _sub(postal, _ram("LineOne"), lines[0])
        _sub(postal, _ram("CityName"), ", ".join(lines[1:]) or lines[0])
    _sub(postal, _ram("CountryID"), country)
    if vat:
        _sub(_sub(party, _ram("SpecifiedTaxRegistration")), _ram("ID"), vat, schemeID="VA")


def _cii_tax(
    parent: ET.Element, rate: Decimal, *, basis: Decimal | None, tax: Decimal | None
) -> None:
    node = _sub(parent, _ram("ApplicableTradeTax"))
    if tax is not None:
        _sub(node, _ram("CalculatedAmount"), _money(tax))
    _sub(node, _ram("TypeCode"), "VAT")
    if basis is not None:
        _sub(node, _ram("BasisAmount"), _money(basis))
    _sub(node, _ram("CategoryCode"), "S" if rate else "Z")
    _sub(node, _ram("RateApplicablePercent"), _rate(rate))


def cii_xml(labels: InvoiceLabels, *, guideline: str = EN16931) -> bytes:
    """The invoice as CII XML (Factur-X / ZUGFeRD 2 EN16931, or XRechnung with its guideline)."""
    root = ET.Element(f"{{{RSM}}}CrossIndustryInvoice")
    context = _sub(root, f"{{{RSM}}}ExchangedDocumentContext")
    _sub(_sub(context, _ram("GuidelineSpecifiedDocumentContextParameter")), _ram("ID"), guideline)
    document = _sub(root, f"{{{RSM}}}ExchangedDocument")
    _sub(document, _ram("ID"), labels.invoice_number)
    _sub(document, _ram("TypeCode"), "381" if labels.document_type == "credit_note" else "380")
    _cii_date(document, "IssueDateTime", labels.date)
    trade = _sub(root, f"{{{RSM}}}SupplyChainTradeTransaction")
    for number, item in enumerate(labels.line_items, start=1):
        line = _sub(trade, _ram("IncludedSupplyChainTradeLineItem"))
        _sub(_sub(line, _ram("AssociatedDocumentLineDocument")), _ram("LineID"), str(number))
        _sub(_sub(line, _ram("SpecifiedTradeProduct")), _ram("Name"), _one_line(item.description))
        price = _sub(
            _sub(line, _ram("SpecifiedLineTradeAgreement")), _ram("NetPriceProductTradePrice")
        )
        _sub(price, _ram("ChargeAmount"), _money(item.unit_price))
        delivery = _sub(line, _ram("SpecifiedLineTradeDelivery"))
        _sub(delivery, _ram("BilledQuantity"), _quantity(item.quantity), unitCode="C62")
        settlement = _sub(line, _ram("SpecifiedLineTradeSettlement"))
        _cii_tax(settlement, labels.tax_rate, basis=None, tax=None)
        summation = _sub(settlement, _ram("SpecifiedTradeSettlementLineMonetarySummation"))
        _sub(summation, _ram("LineTotalAmount"), _money(item.amount))
    agreement = _sub(trade, _ram("ApplicableHeaderTradeAgreement"))
    if guideline == XRECHNUNG:  # XRechnung requires the buyer's routing id (Leitweg-ID)
        _sub(
            agreement,
            _ram("BuyerReference"),
            f"04011000-{zlib.crc32(labels.customer.encode()) % 10**5:05d}-17",
        )
    country = _country(labels)
    _cii_party(
        agreement, "SellerTradeParty", labels.supplier, labels.supplier_address,
        labels.supplier_vat, country,
    )  # fmt: skip
    _cii_party(
        agreement, "BuyerTradeParty", labels.customer, labels.customer_address,
        labels.customer_vat, country,
    )  # fmt: skip
    _sub(trade, _ram("ApplicableHeaderTradeDelivery"))
    settlement = _sub(trade, _ram("ApplicableHeaderTradeSettlement"))
    _sub(settlement, _ram("InvoiceCurrencyCode"), labels.currency)
    _cii_tax(settlement, labels.tax_rate, basis=labels.subtotal, tax=labels.tax)
    if labels.due_date:
        _cii_date(
            _sub(settlement, _ram("SpecifiedTradePaymentTerms")), "DueDateDateTime", labels.due_date
        )
    totals = _sub(settlement, _ram("SpecifiedTradeSettlementHeaderMonetarySummation"))
    _sub(totals, _ram("LineTotalAmount"), _money(labels.subtotal))
    _sub(totals, _ram("TaxBasisTotalAmount"), _money(labels.subtotal))
    _sub(totals, _ram("TaxTotalAmount"), _money(labels.tax), currencyID=labels.currency)
    _sub(totals, _ram("GrandTotalAmount"), _money(labels.total))
    _sub(totals, _ram("DuePayableAmount"), _money(labels.total))
    if labels.reference:
        referenced = _sub(settlement, _ram("InvoiceReferencedDocument"))
        _sub(referenced, _ram("IssuerAssignedID"), labels.reference)
    return _serialise(root)


# ---- UBL ------------------------------------------------------------------------------------


def _cbc(name: str) -> str:
    return f"{{{CBC}}}{name}"


def _cac(name: str) -> str:
    return f"{{{CAC}}}{name}"


def _ubl_amount(parent: ET.Element, tag: str, value: Decimal, currency: str) -> None:
    _sub(parent, _cbc(tag), _money(value), currencyID=currency)


def _ubl_tax_scheme(parent: ET.Element) -> None:
    _sub(_sub(parent, _cac("TaxScheme")), _cbc("ID"), "VAT")


def _ubl_party(
    parent: ET.Element, tag: str, name: str, address: str, vat: str, country: str
) -> None:
    party = _sub(_sub(parent, _cac(tag)), _cac("Party"))
    _sub(_sub(party, _cac("PartyName")), _cbc("Name"), name)
    lines = address.splitlines()
    postal = _sub(party, _cac("PostalAddress"))
    if lines:
        _sub(postal, _cbc("StreetName"), lines[0])
        _sub(postal, _cbc("CityName"), ", ".join(lines[1:]) or lines[0])
    _sub(_sub(postal, _cac("Country")), _cbc("IdentificationCode"), country)
    if vat:
        scheme = _sub(party, _cac("PartyTaxScheme"))
        _sub(scheme, _cbc("CompanyID"), vat)
        _ubl_tax_scheme(scheme)
    _sub(_sub(party, _cac("PartyLegalEntity")), _cbc("RegistrationName"), name)


def _ubl_category(parent: ET.Element, tag: str, rate: Decimal) -> None:
    category = _sub(parent, _cac(tag))
    _sub(category, _cbc("ID"), "S" if rate else "Z")
    _sub(category, _cbc("Percent"), _rate(rate))
    _ubl_tax_scheme(category)


def ubl_xml(labels: InvoiceLabels) -> bytes:
    """The invoice as a UBL 2.1 Invoice, or a CreditNote for a credit note (Peppol BIS 3.0)."""
    credit = labels.document_type == "credit_note"
    kind = "CreditNote" if credit else "Invoice"
    currency = labels.currency
    root = ET.Element(f"{{{UBL_CREDIT_NOTE if credit else UBL_INVOICE}}}{kind}")
    _sub(root, _cbc("CustomizationID"), EN16931)
    _sub(root, _cbc("ProfileID"), PEPPOL)
    _sub(root, _cbc("ID"), labels.invoice_number)
    _sub(root, _cbc("IssueDate"), labels.date)
    if labels.due_date and not credit:  # UBL 2.1 credit notes carry it under PaymentMeans
        _sub(root, _cbc("DueDate"), labels.due_date)
    _sub(root, _cbc(f"{kind}TypeCode"), "381" if credit else "380")
    _sub(root, _cbc("DocumentCurrencyCode"), currency)
    if labels.reference:
        reference = _sub(_sub(root, _cac("BillingReference")), _cac("InvoiceDocumentReference"))
        _sub(reference, _cbc("ID"), labels.reference)
    country = _country(labels)
    _ubl_party(
        root, "AccountingSupplierParty", labels.supplier, labels.supplier_address,
        labels.supplier_vat, country,
    )  # fmt: skip
    _ubl_party(
        root, "AccountingCustomerParty", labels.customer, labels.customer_address,
        labels.customer_vat, country,
    )  # fmt: skip
    if labels.due_date and credit:
        means = _sub(root, _cac("PaymentMeans"))
        _sub(means, _cbc("PaymentMeansCode"), "58")
        _sub(means, _cbc("PaymentDueDate"), labels.due_date)
    tax_total = _sub(root, _cac("TaxTotal"))
    _ubl_amount(tax_total, "TaxAmount", labels.tax, currency)
    subtotal = _sub(tax_total, _cac("TaxSubtotal"))
    _ubl_amount(subtotal, "TaxableAmount", labels.subtotal, currency)
    _ubl_amount(subtotal, "TaxAmount", labels.tax, currency)
    _ubl_category(subtotal, "TaxCategory", labels.tax_rate)
    totals = _sub(root, _cac("LegalMonetaryTotal"))
    _ubl_amount(totals, "LineExtensionAmount", labels.subtotal, currency)
    _ubl_amount(totals, "TaxExclusiveAmount", labels.subtotal, currency)
    _ubl_amount(totals, "TaxInclusiveAmount", labels.total, currency)
    _ubl_amount(totals, "PayableAmount", labels.total, currency)
    for number, item in enumerate(labels.line_items, start=1):
        line = _sub(root, _cac(f"{kind}Line"))
        _sub(line, _cbc("ID"), str(number))
        quantity = "CreditedQuantity" if credit else "InvoicedQuantity"
        _sub(line, _cbc(quantity), _quantity(item.quantity), unitCode="C62")
        _ubl_amount(line, "LineExtensionAmount", item.amount, currency)
        product = _sub(line, _cac("Item"))
        _sub(product, _cbc("Name"), _one_line(item.description))
        _ubl_category(product, "ClassifiedTaxCategory", labels.tax_rate)
        _ubl_amount(_sub(line, _cac("Price")), "PriceAmount", item.unit_price, currency)
    return _serialise(root)


# ---- Factur-X ---------------------------------------------------------------------------------


@contextmanager
def _stamped_at(moment: datetime) -> Iterator[None]:
    """The factur-x library stamps the PDF's and the XMP's dates with the current time; pinning
    its two clock readings to the invoice date keeps a seed's bytes the same from run to run."""
    from facturx import facturx

    stamp = moment.strftime("D:%Y%m%d%H%M%S+00'00'")
    with (
        mock.patch.object(facturx, "_get_pdf_timestamp", lambda date=None: stamp),
        mock.patch.object(
            facturx, "_get_metadata_timestamp", lambda: moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
        ),
    ):
        yield


def facturx_pdf(pdf: bytes, labels: InvoiceLabels) -> bytes:
    """The born-digital `pdf` with the labels' CII XML embedded (Factur-X EN16931 profile)."""
    from facturx import generate_from_binary

    moment = datetime.fromisoformat(labels.date).replace(tzinfo=UTC)
    metadata = {
        "author": labels.supplier,
        "keywords": "Factur-X, Invoice",
        "title": f"{labels.supplier}: {labels.invoice_number}",
        "subject": f"Factur-X invoice {labels.invoice_number} dated {labels.date}",
    }
    with _stamped_at(moment):
        made: Any = generate_from_binary(
            pdf,
            cii_xml(labels),
            flavor="factur-x",
            level="en16931",
            check_xsd=True,
            pdf_metadata=metadata,
            lang=labels.language,
        )
    return bytes(made)


def check_schema(xml: bytes, form: EInvoiceFormat, *, credit_note: bool = False) -> None:
    """Raise when `xml` does not validate against its schema (shipped with `factur-x`)."""
    from facturx import xml_check_xsd

    if form is EInvoiceFormat.UBL:
        xml_check_xsd(xml, flavor="ubl-2.1-creditnote" if credit_note else "ubl-2.1-invoice")
    else:
        xml_check_xsd(xml, flavor="factur-x", level="en16931")


def einvoice(pdf: bytes, labels: InvoiceLabels, form: EInvoiceFormat) -> bytes:
    """The e-invoice twin of an invoice whose born-digital PDF is `pdf`, schema-checked."""
    if form is EInvoiceFormat.FACTURX:
        return facturx_pdf(pdf, labels)
    if form is EInvoiceFormat.UBL:
        xml = ubl_xml(labels)
    else:
        german = labels.language == "de-DE"
        xml = cii_xml(labels, guideline=XRECHNUNG if german else EN16931)
    check_schema(xml, form, credit_note=labels.document_type == "credit_note")
    return xml
