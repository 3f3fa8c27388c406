"""ISO 3166-1 alpha-2 country and ISO 4217 currency codes, from pycountry's data."""

from __future__ import annotations

from typing import Annotated

import pycountry
from pydantic import AfterValidator, StringConstraints

COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)
CURRENCIES: frozenset[str] = frozenset(c.alpha_3 for c in pycountry.currencies)


def _known_country(code: str) -> str:
    if code not in COUNTRIES:
        raise ValueError(f"unknown country code {code!r} (ISO 3166-1 alpha-2 expected)")
    return code


def _known_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"unknown currency code {code!r} (ISO 4217 expected)")
    return code


CountryCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2}$"), AfterValidator(_known_country)]
CurrencyCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_known_currency)]
