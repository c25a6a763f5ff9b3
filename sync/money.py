"""Money as text, exactly: amounts are `Decimal`, never floats, and rounded as QBO rounds them.

`money` is a canonical form for comparing ("10.5" whether it came as 10.5, "10.50" or
Decimal("10.500")); `cents` is an amount as a document shows it (two places, half-up).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")


def decimal(value: Any) -> Decimal | None:
    """A number as an exact decimal (through its text, so 0.1 stays 0.1); None when it is not one."""
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def money(value: Any) -> str | None:
    """A price or cost as canonical text: "10.5" whether it came as 10.5, "10.50" or Decimal("10.500")."""
    number = decimal(value)
    return None if number is None else format(number.normalize(), "f")


def cents(value: Any) -> str | None:
    """An amount to the cent, rounded half-up as QBO rounds: "40.50"."""
    number = decimal(value)
    return None if number is None else str(number.quantize(CENT, ROUND_HALF_UP))
