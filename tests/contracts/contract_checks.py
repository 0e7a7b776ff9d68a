"""Golden comparison for the contract tests (pytest side of contract_support)."""

from __future__ import annotations

import pytest

from contract_support import Contract, Unavailable, explain_mismatch, golden_text, spec_map


def available(fn, *args):
    """fn(*args), or a skip saying which prerequisite (toolchain, PyPI) is missing."""
    try:
        return fn(*args)
    except Unavailable as exc:
        pytest.skip(str(exc))


def check_golden(contract: Contract, path: str) -> str:
    """Produce golden `path` afresh and compare it with the stored one; returns the fresh text."""
    spec = spec_map()[path]
    fresh = available(spec.produce, contract)
    stored = golden_text(path)
    assert stored == fresh, explain_mismatch(path, stored, fresh)
    return fresh


def golden_paths(prefix: str) -> list[str]:
    """The goldens under `prefix` that are compared as text (the others have dedicated tests)."""
    return [p for p, s in spec_map().items() if p.startswith(prefix) and s.exact]
