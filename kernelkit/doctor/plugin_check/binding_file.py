"""plugin-check of a binding file: each given case as one check model, compiled with the check bindings."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from kernelkit.core.errors import KernelkitError
from kernelkit.doctor.plugin_check.check_model import CheckCase, prepare_bindings, write_check_model
from kernelkit.doctor.plugin_check.launch_compare import compare_with_kernelkit
from kernelkit.doctor.plugin_check.run import CHECK_BLOB_SUFFIX, compile_check, keep_check_folder
from kernelkit.doctor.plugin_check.verdict import REJECTED, Verdict, blob_batch, classify
from kernelkit.myriad import compile as compile_mod


def check(bindings: str | Path, cases: Sequence[CheckCase], *, jobs: int | None = None,
          keep: str | Path | None = None, config: dict[str, str] | None = None) -> list[Verdict]:
    """The plugin's verdict on `bindings` for each case (one compile each, in parallel)."""
    from kernelkit.myriad import toolchain

    tc = toolchain.require()
    bindings = Path(bindings)
    if not bindings.is_file():
        raise KernelkitError("binding file not found", path=bindings)
    jobs = jobs or max(os.cpu_count() or 1, 1)
    with tempfile.TemporaryDirectory(prefix="kernelkit-plugin-check-") as tmp:
        folder = Path(tmp)
        check_xml = prepare_bindings(bindings, folder)
        full_config = compile_mod.make_config(custom_layers=check_xml, extra=config)

        def one(index_case):
            index, case = index_case
            case_dir = folder / f"case{index}"
            case_dir.mkdir()
            model = write_check_model(case, case_dir / "model.xml")
            blob = case_dir / ("model" + CHECK_BLOB_SUFFIX)
            compiled = compile_check(model, blob, full_config, tc)
            verdict = Verdict(case, REJECTED)
            classify(verdict, compiled, blob)
            compare_with_kernelkit(verdict, bindings, blob_batch(blob) if compiled.compiled else 1)
            if keep is not None and blob.is_file():
                verdict.blob = blob
            return verdict

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            verdicts = list(pool.map(one, enumerate(cases)))
        if keep is not None:
            keep_check_folder(folder, Path(keep), verdicts)
    return verdicts
