"""Python's verdict from its bytecode cache: a file this interpreter has compiled (a pyc
beside it with its magic number, recording this source) is not compiled again; any
other file is, so a broken file is never hidden by a stale pyc."""

from __future__ import annotations

import importlib.util
import os
import py_compile
import time
from pathlib import Path

import pytest

from enslint.checking import FileJob, check_file
from enslint.checking import verdict as verdict_module
from enslint.config import Config
from enslint.parsing import compiled_by_python
from enslint.rules import Settings

VALID = "def f(x):\n    return x + 1\n"


def source_with_pyc(tmp_path: Path, text: str = VALID, mode=py_compile.PycInvalidationMode.TIMESTAMP) -> Path:
    path = tmp_path / "module.py"
    path.write_text(text)
    past = time.time() - 10
    os.utime(path, (past, past))  # saved before the pyc is written, as after a run
    py_compile.compile(str(path), doraise=True, invalidation_mode=mode)
    return path


def test_a_file_python_compiled_has_its_verdict(tmp_path):
    path = source_with_pyc(tmp_path)
    assert compiled_by_python(str(path), path.read_bytes())


def test_a_file_changed_since_is_compiled_again(tmp_path):
    path = source_with_pyc(tmp_path)
    path.write_text(VALID + "y = 2\n")
    assert not compiled_by_python(str(path), path.read_bytes())


def test_a_save_of_the_same_size_in_the_pycs_second_is_not_trusted(tmp_path):
    path = tmp_path / "module.py"
    path.write_text(VALID)
    py_compile.compile(str(path), doraise=True)  # in the same second as the save
    assert not compiled_by_python(str(path), path.read_bytes())


def test_hash_based_pycs_compare_the_source(tmp_path):
    path = source_with_pyc(tmp_path, mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    assert compiled_by_python(str(path), path.read_bytes())
    assert not compiled_by_python(str(path), VALID.replace("1", "2").encode())


def test_another_pythons_pyc_is_not_this_ones_verdict(tmp_path):
    path = source_with_pyc(tmp_path)
    cached = Path(importlib.util.cache_from_source(str(path)))
    data = bytearray(cached.read_bytes())
    data[0] ^= 0xFF
    cached.write_bytes(bytes(data))
    assert not compiled_by_python(str(path), path.read_bytes())


def test_bytes_not_read_from_the_file_are_not_its_verdict(tmp_path):
    path = source_with_pyc(tmp_path)
    assert not compiled_by_python(str(path), b"def f(:\n")  # standard input, say


def _findings(path: Path) -> list[str]:
    job = FileJob(path.name, str(path), Config(root=path.parent).enabled_codes(), Settings())
    return [d.message for d in check_file(job)]


def test_check_takes_the_verdict_from_the_pyc(tmp_path, monkeypatch):
    path = source_with_pyc(tmp_path)

    def never(*args):
        raise AssertionError("compiled again")

    monkeypatch.setattr(verdict_module, "target_check", never)
    assert _findings(path) == []


@pytest.mark.parametrize("broken", ["def f(x):\n    return x +\n", "def f(x):\n    retur x + 1\n"])
def test_a_broken_file_with_a_stale_pyc_is_still_ens000(tmp_path, broken):
    path = source_with_pyc(tmp_path)
    path.write_text(broken)
    (message,) = _findings(path)
    assert message.startswith("syntax error for Python")
