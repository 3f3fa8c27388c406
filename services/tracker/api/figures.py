"""One representation of every decimal figure the API serves - amounts in USD, quantities,
ratios and shares alike: a JSON string with exactly four decimal places, rounded half to
even (``"68700000000.0000"``, ``"0.6870"``). Strings, because a JSON number loses digits
in most parsers once an amount passes 2**53; four places, because FX-converted sums carry
fractions of a cent (the sample's rates have four decimals, so its totals are exact) and a
share or ratio needs them. The fold itself stays exact: rounding happens here only."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Annotated

from pydantic import PlainSerializer, WithJsonSchema

from services.tracker.domain.ledger import MONEY

SCALE = 4
QUANTUM = Decimal(1).scaleb(-SCALE)
PATTERN = rf"^-?[0-9]+\.[0-9]{{{SCALE}}}$"


def figure_text(value: Decimal | str | int) -> str:
    with localcontext(MONEY):  # amounts of 30 digits exceed the default 28
        rounded = Decimal(value).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"  # never "-0.0000"


Figure = Annotated[
    Decimal,
    PlainSerializer(figure_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": PATTERN,
                    "description": f"A decimal with exactly {SCALE} places, as a string.",
                    "examples": ["68700000000.0000", "0.6870"]}),
]
