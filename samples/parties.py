"""The parties of a development-set invoice: company names with legal forms, addresses and VAT ids,
drawn with Faker in each country's own style.

Faker is seeded from the invoice's own random generator, so a seed gives the same parties with the
same Faker release; a new Faker release may draw other names, and labels.json is written with the
documents, so the truth always matches what was drawn.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from faker import Faker

from samples.locales import Locale


@dataclass(frozen=True)
class Party:
    name: str
    address: str  # lines separated by "\n"
    vat_id: str  # "" where the country's invoices carry none (a US buyer)


@cache
def _faker(locale: str) -> Faker:
    # Building a Faker loads its providers (tens of milliseconds): once per locale and process.
    return Faker(locale)


def _printable(draw: Callable[[], str]) -> str:
    """A Faker value the PDFs' core fonts can draw (Windows-1252), on one line."""
    for _ in range(50):
        value = " ".join(draw().replace("\n", ", ").split())
        try:
            value.encode("cp1252")
        except UnicodeEncodeError:
            continue
        return value
    raise RuntimeError("Faker drew nothing printable in Windows-1252 fifty times over")


def company(rng: random.Random, fake: Faker, locale: Locale) -> str:
    """A company name: mostly a family name with a trade and a legal form ("Ring Logistik GmbH"),
    sometimes two family names, sometimes Faker's own (which may have no legal form), and one in
    eight a sole trader's name without one."""
    last = _printable(fake.last_name)
    form = rng.choice(locale.legal_forms)
    shape = rng.random()
    if shape < 0.45:
        name = f"{last} {rng.choice(locale.trades)} {form}"
    elif shape < 0.65:
        name = f"{last} & {_printable(fake.last_name)} {form}"
    elif shape < 0.875:
        name = _printable(fake.company)  # with Faker's own legal forms, or none
    else:
        name = f"{last} {rng.choice(locale.trades)}"
    return name


def address(fake: Faker, locale: Locale) -> str:
    street = _printable(fake.street_address)
    postcode, city = _printable(fake.postcode), _printable(fake.city)
    if locale.address_style == "us":
        return f"{street}\n{city}, {_printable(fake.state_abbr)} {postcode}"
    if locale.address_style == "gb":
        return f"{street}\n{city}\n{postcode}"
    return f"{street}\n{postcode} {city}"


def vat_id(rng: random.Random, fake: Faker, locale: Locale) -> str:
    if locale.address_style == "us":  # no VAT: the seller's federal employer id instead
        return f"{rng.randint(10, 99)}-{rng.randint(1_000_000, 9_999_999)}"
    return _printable(fake.vat_id)


def draw_party(rng: random.Random, locale: Locale, *, buyer: bool = False) -> Party:
    fake = _faker(locale.faker)
    fake.seed_instance(rng.randrange(2**32))
    name = company(rng, fake, locale)
    # US buyers, and one European buyer in four (a consumer, a small firm), show no VAT id.
    has_vat = not buyer or (locale.address_style != "us" and rng.random() < 0.75)
    return Party(
        name=name,
        address=address(fake, locale),
        vat_id=vat_id(rng, fake, locale) if has_vat else "",
    )
