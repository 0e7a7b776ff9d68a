"""The latency and memory model of an OAK (RVC2): fitted rates and stated assumptions, from data/rvc2-estimate.toml.

`estimate_params()` gives the file as a dict ({"fitted": ..., "assumed": ..., "memory": ...}); the calibration
script (benchmarks/estimate_calibration.py) rewrites [fitted] and nothing else reads the file.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).parent / "data" / "rvc2-estimate.toml"
RATES = ("engine_rate", "ddr_bandwidth", "dma_bandwidth", "shave_rate", "stage_overhead")


@lru_cache(maxsize=1)
def estimate_params() -> dict:
    with open(DATA_FILE, "rb") as handle:
        return tomllib.load(handle)
