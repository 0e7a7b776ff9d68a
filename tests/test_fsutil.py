import os

import pytest

from kernelkit.core.errors import KernelkitError
from kernelkit.core.fsutil import atomic_write, staged_directory


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out" / "a.txt"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(target.parent)) == ["a.txt"]


def test_staged_directory_publishes_only_on_success(tmp_path):
    target = tmp_path / "result"
    with pytest.raises(RuntimeError):
        with staged_directory(target) as stage:
            (stage / "half.txt").write_text("partial")
            raise RuntimeError("boom")
    assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == []

    with staged_directory(target) as stage:
        (stage / "done.txt").write_text("ok")
    assert (target / "done.txt").read_text() == "ok"


def test_staged_directory_refuses_non_empty_target_without_force(tmp_path):
    target = tmp_path / "result"
    target.mkdir()
    (target / "user-file").write_text("keep me")
    with pytest.raises(KernelkitError, match="not empty"):
        with staged_directory(target):
            pass
    assert (target / "user-file").read_text() == "keep me"

    with staged_directory(target, force=True) as stage:
        (stage / "new").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == ["new"]


def test_staged_directory_merge_keeps_other_files(tmp_path):
    target = tmp_path / "result"
    target.mkdir()
    (target / "other").write_text("unrelated")
    (target / "same").write_text("old")
    with staged_directory(target, allow_existing=True) as stage:
        (stage / "same").write_text("new")
    assert (target / "other").read_text() == "unrelated"
    assert (target / "same").read_text() == "new"


def test_atomic_write_gives_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import kernelkit.core.fsutil as fsutil
        importlib.reload(fsutil)
        target = fsutil.atomic_write(tmp_path / "blob.bin", b"x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644
