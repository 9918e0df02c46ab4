"""Text to value: one config key's value from a YAML file or a flag, converted and range-checked by its Spec.

Values are echoed in error messages, bounded (a file from elsewhere may hold megabytes).
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from typing import Any

from nstcli.config.layers import check_layers
from nstcli.config.specs import Spec
from nstcli.errors import ConfigError


# Values are echoed in error messages; a config file from elsewhere may hold megabytes or deeply
# nested (aliased) lists, so show a bounded preview.
class _Preview(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        # repr() itself refuses integers of more than 4300 digits (a ValueError); count them instead.
        if x.bit_length() > 256:
            digits = int(math.log10(abs(x))) + 1  # the float log can be one too high near 10**k
            if 10 ** (digits - 1) > abs(x):
                digits -= 1
            return f"<{'-' if x < 0 else ''}{digits}-digit integer>"
        return super().repr_int(x, level)


_PREVIEW = _Preview()  # attributes, not keywords: Repr() takes none before Python 3.12
_PREVIEW.maxstring = _PREVIEW.maxother = 60
_PREVIEW.maxlist = _PREVIEW.maxtuple = _PREVIEW.maxdict = _PREVIEW.maxset = 6
_PREVIEW.maxlevel = 2


def show(value: Any) -> str:
    return _PREVIEW.repr(value)


def _split(value: Any) -> list:
    if isinstance(value, str):
        parts = [part.strip() for part in value.strip().rstrip(",").split(",")]
        if any(not part for part in parts):  # "0.5,,0.5": a missing value, not two values
            raise ValueError(value)
        return parts
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError


def _to_float(value: Any) -> float:
    # YAML reads "1e3" as a string (YAML 1.1 wants "1.0e+3"); accept what a person would write.
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        return float(value.strip())
    raise TypeError


class HugeInteger(str):
    """An integer too long for int() (Python refuses more than 4300 digits): its digits, kept as text.

    No key takes such a number, so all a value like this needs is the key's range error.
    """

    @property
    def negative(self) -> bool:
        return self.lstrip().startswith("-")

    def __repr__(self) -> str:
        return f"<{'-' if self.negative else ''}{len(self.strip().lstrip('+-'))}-digit integer>"


_INTEGER_TEXT = re.compile(r"\s*[+-]?\d+\s*")


def _to_int(value: Any) -> int | HugeInteger:
    if isinstance(value, bool):
        raise TypeError
    if isinstance(value, HugeInteger):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            if _INTEGER_TEXT.fullmatch(value):
                return HugeInteger(value)
            raise
    raise TypeError


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise TypeError


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "none", "null"))


def _check_range(spec: Spec, name: str, out: int | float, value: Any) -> None:
    shown = show(out if isinstance(out, HugeInteger) else value)
    if isinstance(out, HugeInteger):
        bound = spec.minimum if out.negative else spec.maximum
        if bound is None:  # pragma: no cover - every integer key has both bounds
            raise ConfigError(f"{name} must be an integer of at most 4300 digits, got {shown}")
        out = -math.inf if out.negative else math.inf
    if spec.minimum is not None and out < spec.minimum:
        raise ConfigError(f"{name} must be at least {spec.minimum}, got {shown}")
    if spec.maximum is not None and out > spec.maximum:
        raise ConfigError(f"{name} must be at most {spec.maximum}, got {shown}")
    if spec.below and out >= spec.maximum:
        raise ConfigError(f"{name} must be below {spec.maximum}, got {shown}")
    if spec.positive and out <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {shown}")


def convert(spec: Spec, name: str, value: Any) -> Any:
    """One value of `spec.type`; TypeError or ValueError when it is not one."""
    if spec.type is int:
        out = _to_int(value)
        if spec.choices and str(out) not in spec.choices:
            raise ConfigError(f"{name} must be {spec.expected}, got {show(value)}")
        return out
    if spec.type is float:
        out = _to_float(value)
        if not math.isfinite(out):
            raise ConfigError(f"{name} must be a finite number, got {show(value)}")
        return out
    if spec.type is bool:
        return _to_bool(value)
    if spec.size:
        if isinstance(value, bool):
            raise TypeError
        return parse_size(value)
    if not isinstance(value, str):
        raise TypeError
    if spec.choices:
        out = value.strip().lower()
        if out not in spec.choices:
            hint = difflib.get_close_matches(out, spec.choices, n=1)
            extra = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(f"{name} must be {spec.expected}, got {show(value)}{extra}")
        return out
    if not value.strip() or "\0" in value:
        raise TypeError
    return value.strip()


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    """'6GB', '6 GiB', '512MB', '1.5g', '2000000000' -> bytes; ValueError if it is not a size."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(text)
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise ValueError(text)
    return int(value)


def value_of(spec: Spec, name: str, value: Any) -> Any:
    """A YAML value or a CLI string as the key's type, or ConfigError calling it `name`."""
    try:
        if spec.optional and _is_empty(value):
            return None
        if not spec.many:
            out = convert(spec, name, value)
            if isinstance(out, (int, float, HugeInteger)) and not isinstance(out, bool):
                _check_range(spec, name, out, value)
            return out
        parts = _split(value)
        if spec.type is str:
            if not all(isinstance(part, str) for part in parts):
                raise TypeError
            return check_layers((part.strip() for part in parts), name)
        out = tuple(_to_float(part) for part in parts)
        if any(not math.isfinite(v) or v < 0 for v in out):
            raise ConfigError(f"{name} values must be finite, non-negative numbers, got {show(value)}")
        return out
    except (TypeError, ValueError, OverflowError):  # OverflowError: float() of a huge YAML integer
        raise ConfigError(f"{name} must be {spec.expected}, got {show(value)}") from None
