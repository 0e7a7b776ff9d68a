"""Fixtures of the contract tests: one `Contract` (the shared CLI runs, each done once) per session.

The goldens are written by make_goldens.py from the code as it was when they were pinned; contract_support.py
says what each one holds and what is normalised.
"""

from __future__ import annotations

import pytest

from contract_support import Contract


@pytest.fixture(scope="session")
def contract(tmp_path_factory) -> Contract:
    return Contract(tmp_path_factory.mktemp("contracts"))
