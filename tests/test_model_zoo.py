"""tools/model_zoo.py's false-OK count (issue 21): a row is a false OK when `patch` exits 0 and the real compile
then refuses the folder or no blob came of it. Real `kernelkit` commands on the example model, the real plugin."""

from __future__ import annotations

from kernelkit.core.paths import EXAMPLES_DIR
from myriad_models import require_toolchain
from tools import model_zoo

EXAMPLE = EXAMPLES_DIR / "blocked_model" / "model.onnx"


def _row(tmp_path, name):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    # an absolute `file` stays itself under the corpus folder (pathlib joins it as is)
    return model_zoo.run_model({"name": name, "file": str(EXAMPLE), "args": []}, work, timeout=600)


def test_a_patch_the_plugin_compiled_is_compiled_again_and_is_no_false_ok(tmp_path, monkeypatch):
    require_toolchain()
    row = _row(tmp_path, "blocked_model")
    assert row["patch"]["code"] == 0 and row["patch"]["plugin"]["status"] == "compiled"
    assert row["compile"]["blob_bytes"] > 0
    assert row["compile_again"]["code"] == 0 and row["compile_again"]["blob_bytes"] > 0
    assert row["false_ok"] is None and row["tracebacks"] == []
    assert row["verify"]["code"] == 0

    # The same row, had `kernelkit compile FOLDER` refused: a false OK, the docs count it and say why.
    refused = dict(row, name="refused_again",
                   compile_again={"code": 1, "seconds": 1.0, "blob_bytes": None, "message": "plugin says no"})
    assert "kernelkit compile FOLDER` exit 1: plugin says no" in model_zoo.false_ok(refused)
    docs = tmp_path / "model-zoo.md"
    monkeypatch.setattr(model_zoo, "DOCS", docs)
    model_zoo.write_docs([row, refused], ["blocked_model", "refused_again"])
    text = docs.read_text()
    assert "**False OKs: 1** (refused_again)" in text
    line = next(l for l in text.splitlines() if l.startswith("| refused_again |"))
    assert "**FALSE OK**" in line and "again from the folder: exit 1: plugin says no" in line
    assert "**FALSE OK**" not in next(l for l in text.splitlines() if l.startswith("| blocked_model |"))


def test_without_the_toolchain_the_zoo_takes_no_knowledge_base_verdict_for_the_plugin_s(tmp_path, monkeypatch):
    """The zoo runs `patch --compile`: without the toolchain that exits 3 instead of an exit 0 on the knowledge
    base's verdict alone, so no row can count as compiled without the real plugin."""
    empty = tmp_path / "empty-cache"
    empty.mkdir()
    monkeypatch.setenv("KERNELKIT_CACHE_DIR", str(empty))
    row = _row(tmp_path, "no_toolchain")
    assert row["baseline"]["code"] == 3                      # `kernelkit compile`: toolchain unavailable
    assert row["patch"]["code"] == 3 and "toolchain" in row["patch"]["message"]
    assert "compile_again" not in row and "estimate" not in row
    assert row["false_ok"] is None and model_zoo._verdict(row) == "blocked"
