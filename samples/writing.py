"""How one document writes its words, dates and amounts: a `Style`, drawn from a `Locale`.

The labels say what an invoice means (an ISO date, a Decimal total, an ISO 4217 currency); the
style says how this particular document prints it ("12. März 2024", "1.234,56 €", "($8.79)"), so
that one locale yields documents that differ the way real suppliers' invoices do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from samples.locales import SYMBOLS, Locale


@dataclass(frozen=True)
class Style:
    locale: Locale
    words: dict[str, str]  # concept -> the synonym this document uses
    date_format: str
    thousands: str
    decimal: str
    negative: str  # "-{}", "({})" or "{}-"
    currency_as_code: bool  # "EUR 12,50" rather than "12,50 €"
    currency_first: bool
    currency_in_table: bool  # line-item amounts carry the currency too

    @classmethod
    def default(cls, locale: Locale) -> Style:
        """The commonest way of writing in `locale`: every first choice."""
        thousands, decimal = locale.separators[0]
        return cls(
            locale=locale,
            words={concept: synonyms[0] for concept, synonyms in locale.words.items()},
            date_format=locale.date_formats[0],
            thousands=thousands,
            decimal=decimal,
            negative=locale.negatives[0],
            currency_as_code=False,
            currency_first=locale.symbol_first,
            currency_in_table=False,
        )

    @classmethod
    def draw(cls, rng: random.Random, locale: Locale, currency: str) -> Style:
        """A way of writing drawn from `rng`: first choices twice as likely as each other."""

        def pick(options: tuple[str, ...]) -> str:
            return rng.choice((options[0], *options))

        thousands, decimal = rng.choice((locale.separators[0], *locale.separators))
        # A currency with no symbol here is always written by its code.
        as_code = currency not in SYMBOLS or rng.random() < 0.3
        return cls(
            locale=locale,
            words={concept: pick(synonyms) for concept, synonyms in locale.words.items()},
            date_format=pick(locale.date_formats),
            thousands=thousands,
            decimal=decimal,
            negative=pick(locale.negatives),
            currency_as_code=as_code,
            # "€ 12,50" and "12,50 €" are both common; "$" and "£" stand before the number.
            currency_first=not locale.symbol_first
            if (as_code or currency == "EUR") and rng.random() < 0.25
            else locale.symbol_first,
            currency_in_table=rng.random() < 0.3,
        )

    def word(self, concept: str, **values: object) -> str:
        return self.words[concept].format(**values)

    def date(self, iso: str) -> str:
        day = date.fromisoformat(iso)
        # French writes the first of the month as an ordinal: "1er mars 2024".
        first = "1er" if self.locale.code.startswith("fr") and day.day == 1 else str(day.day)
        return self.date_format.format(
            d=first if "{month}" in self.date_format else day.day,
            dd=f"{day.day:02d}",
            m=day.month,
            mm=f"{day.month:02d}",
            yyyy=day.year,
            month=self.locale.months[day.month - 1],
            mon=self.locale.months_short[day.month - 1],
        )

    def number(self, value: Decimal, *, places: int = 2) -> str:
        """`value` with this document's separators, unsigned: "1.234,50"."""
        whole, _, fraction = f"{abs(value):.{places}f}".partition(".")
        grouped = f"{int(whole):,}".replace(",", self.thousands)
        return f"{grouped}{self.decimal}{fraction}" if fraction else grouped

    def amount(self, value: Decimal) -> str:
        """An amount without its currency, negative ones as this document writes them."""
        written = self.number(value)
        return self.negative.format(written) if value < 0 else written

    def money(self, value: Decimal, currency: str) -> str:
        """An amount with its currency: "$1,234.50", "-8,79 €", "(EUR 8.79)", "8,79- EUR"."""
        mark = currency if self.currency_as_code else SYMBOLS.get(currency, currency)
        number = self.number(value)
        if self.currency_first:
            # A symbol sits against the number ("$8.79"), a code is spaced ("EUR 8.79").
            joined = f"{mark}{' ' if self.currency_as_code or mark == '€' else ''}{number}"
            return self.negative.format(joined) if value < 0 else joined
        signed = self.negative.format(number) if value < 0 else number
        return f"{signed} {mark}"

    def cell(self, value: Decimal, currency: str) -> str:
        """A line-item amount: with its currency when this document shows it in the table."""
        return self.money(value, currency) if self.currency_in_table else self.amount(value)

    def quantity(self, value: Decimal) -> str:
        """A quantity: no decimals when it is whole ("3"), else as many as it has ("1,5")."""
        exponent = value.normalize().as_tuple().exponent
        places = 0 if value == value.to_integral_value() else -int(exponent)
        written = self.number(value, places=places)
        return self.negative.format(written) if value < 0 else written

    def rate(self, percent: Decimal) -> str:
        """A tax rate as written beside its label: "19", "5,5"."""
        return format(percent.normalize(), "f").replace(".", self.decimal)
