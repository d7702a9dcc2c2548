"""The rewritten source of every fixture, held as snapshots, checked without torch.

A change to a rewrite shows here on any machine; tests/test_fix_equivalence.py proves,
where torch is installed, that the same rewritten sources compute what the originals
compute. ENSLINT_UPDATE_SNAPSHOTS=1 rewrites the snapshots: read each diff as a reviewer
of the user's project would before committing it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.analysis.kinds import HELPER_MODULE
from enslint.checking import FileJob
from enslint.config import Config
from enslint.engine.helper_writes import HelperModules
from enslint.engine.transaction import fix_file
from enslint.rules import Settings

SNAPSHOTS = FIXTURES.parent / "tests" / "snapshots"
POSITIVE = sorted(path.name for path in (FIXTURES / "positive").glob("*.py"))
NEGATIVE = sorted(path.name for path in (FIXTURES / "negative").glob("*.py"))


def fixed_text(source: Path, folder: Path, unsafe: bool) -> str | None:
    """The source `--fix` (with `--unsafe-fixes` when `unsafe`) writes for `source`,
    or None when it writes nothing; the package's helper module is written beside it."""
    target = folder / ("fixed_" + source.name)  # the name the equivalence tests give it
    shutil.copyfile(source, target)
    job = FileJob(target.name, str(target), Config(root=folder).enabled_codes(), Settings())
    outcome = fix_file(job, unsafe=unsafe)
    assert outcome.error is None, outcome.error
    if not outcome.fixed:
        assert outcome.after in (None, source.read_text())
        return None
    HelperModules().write_for(outcome.helpers)
    return outcome.after


def compare(snapshot: Path, text: str | None) -> None:
    if os.environ.get("ENSLINT_UPDATE_SNAPSHOTS"):
        if text is None:
            snapshot.unlink(missing_ok=True)
        else:
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            snapshot.write_text(text)
    if text is None:
        assert not snapshot.exists(), f"{snapshot.name}: no fix any more, but a snapshot is held"
    else:
        assert snapshot.exists(), f"{snapshot.name}: a fix with no snapshot (ENSLINT_UPDATE_SNAPSHOTS=1 writes it)"
        assert text == snapshot.read_text()


@pytest.mark.parametrize("fixture", POSITIVE)
@pytest.mark.parametrize("kind", ["safe-fixes", "unsafe-fixes"])
def test_fixed_source_matches_its_snapshot(fixture, kind, tmp_path):
    unsafe = kind == "unsafe-fixes"
    text = fixed_text(FIXTURES / "positive" / fixture, tmp_path, unsafe)
    if unsafe and text is not None:
        # An unsafe snapshot is held where the unsafe fixes add to the safe ones.
        safe_folder = tmp_path / "safe"
        safe_folder.mkdir()
        if fixed_text(FIXTURES / "positive" / fixture, safe_folder, unsafe=False) == text:
            text = None
    compare(SNAPSHOTS / kind / f"{fixture}.snap", text)


def test_every_snapshot_belongs_to_a_fixture():
    for kind in ("safe-fixes", "unsafe-fixes"):
        stale = sorted({path.stem for path in (SNAPSHOTS / kind).glob("*.snap")} - set(POSITIVE))
        assert not stale, f"{kind}: snapshots of fixtures that are gone: {stale}"


@pytest.mark.parametrize("fixture", NEGATIVE)
def test_negative_fixture_gets_no_fix(fixture, tmp_path):
    assert fixed_text(FIXTURES / "negative" / fixture, tmp_path, unsafe=True) is None


def test_helper_module_of_all_fixtures_matches_its_snapshot(tmp_path):
    """The one helper module --fix --unsafe-fixes writes for all the fixtures at once:
    every helper any rewrite imports, once."""
    needs: dict[str, set[str]] = {}
    for fixture in POSITIVE:
        target = tmp_path / fixture
        shutil.copyfile(FIXTURES / "positive" / fixture, target)
        job = FileJob(target.name, str(target), Config(root=tmp_path).enabled_codes(), Settings())
        outcome = fix_file(job, unsafe=True)
        for path, names in outcome.helpers.items():
            needs.setdefault(path, set()).update(names)
    assert list(needs) == [str(tmp_path / f"{HELPER_MODULE}.py")]
    HelperModules().write_for(needs)
    compare(SNAPSHOTS / "helper-module" / f"{HELPER_MODULE}.py.snap", (tmp_path / f"{HELPER_MODULE}.py").read_text())
