"""The goldens and their producers match one to one: no golden without a producer, no producer without a golden."""

from __future__ import annotations

from contract_support import GOLDEN, spec_map


def test_no_missing_or_stale_golden():
    stored = {str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file()}
    expected = set(spec_map())
    assert stored - expected == set(), "goldens no producer writes (run make_goldens.py)"
    assert expected - stored == set(), "producers without a golden (run make_goldens.py)"
