"""Read layer attributes the way IR `<data>` holds them: numbers, lists, or their string forms.

A case's `attrs` come from TOML (ints, floats, lists, strings); an IR layer's come as strings ("1,2", "true").
References accept both, so the same function serves spec cases, ONNX node tests and patched IR layers.
"""

from __future__ import annotations

from typing import Any

from kernelkit.core.errors import KernelkitError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _bad(name: str, value: Any, expected: str) -> KernelkitError:
    return KernelkitError(f"attribute {name}={value!r} is not {expected}", where=f"attrs.{name}",
                          hint=f"give {name} as {expected}")


def attr_int(attrs: dict, name: str, default: int | None = None) -> int:
    value = attrs.get(name, default)
    if value is None:
        raise KernelkitError(f"attribute {name} is required", where=f"attrs.{name}", hint=f"add {name} = <int>")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return 1
        if text in _FALSE:
            return 0
        try:
            number = float(text)
        except ValueError:
            raise _bad(name, value, "an integer") from None
        if number.is_integer():
            return int(number)
    raise _bad(name, value, "an integer")


def attr_bool(attrs: dict, name: str, default: bool = False) -> bool:
    return bool(attr_int(attrs, name, int(default)))


def attr_float(attrs: dict, name: str, default: float | None = None) -> float:
    value = attrs.get(name, default)
    if value is None:
        raise KernelkitError(f"attribute {name} is required", where=f"attrs.{name}", hint=f"add {name} = <number>")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        raise _bad(name, value, "a number") from None


def attr_str(attrs: dict, name: str, default: str | None = None, choices: dict[str, str] | None = None) -> str:
    """A lower-case string; `choices` maps every accepted spelling (lower case) to its canonical name."""
    value = attrs.get(name, default)
    if value is None:
        raise KernelkitError(f"attribute {name} is required", where=f"attrs.{name}")
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip().lower()
    if choices is None:
        return text
    if text not in choices:
        raise _bad(name, value, "one of " + ", ".join(sorted(set(choices))))
    return choices[text]


def attr_ints(attrs: dict, name: str, default: list[int] | None = None) -> list[int] | None:
    """A list of ints from a list, a single number, or a comma string ("1,2"); None if absent without default."""
    value = attrs.get(name, default)
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in value.replace(" ", "").split(",") if p]
        items: list = parts
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    try:
        return [attr_int({name: item}, name) for item in items]
    except KernelkitError:
        raise _bad(name, value, "a list of integers") from None


def attr_floats(attrs: dict, name: str, default: list[float] | None = None) -> list[float] | None:
    value = attrs.get(name, default)
    if value is None:
        return None
    if isinstance(value, str):
        items: list = [p for p in value.replace(" ", "").split(",") if p]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return [attr_float({name: item}, name) for item in items]


def normalize_axis(axis: int, rank: int, name: str = "axis") -> int:
    if not -rank <= axis < rank:
        raise KernelkitError(f"{name}={axis} is out of range for a rank-{rank} input", where=f"attrs.{name}",
                             hint=f"use an axis in [{-rank}, {rank - 1}]")
    return axis % rank
