"""A kernel spec's inputs and case attributes as the reference runners see them."""

from __future__ import annotations


def input_names(spec) -> list[str]:
    """Names of the kernel's inputs as the numpy expression sees them."""
    names = []
    for index, item in enumerate(getattr(spec, "inputs", None) or []):
        name = getattr(item, "name", None) or (item.get("name") if isinstance(item, dict) else None)
        names.append(name or f"x{index}")
    return names


def coerce_attr(value):
    """IR attributes may arrive as strings ("0.5", "1,2"): give numpy and OpenVINO numbers."""
    if isinstance(value, str):
        text = value.strip()
        if "," in text:
            parts = [coerce_attr(p) for p in text.split(",")]
            return parts if all(isinstance(p, (int, float)) for p in parts) else value
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
    return value
