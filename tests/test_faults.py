"""Faults from outside: a killed run, two runs at once, files that vanish, an old cache,
odd paths, a very long file. Nothing may be torn, lost, or reported wrongly."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

from click.testing import CliRunner
from test_cli import FLAGGED, FLAGGED_LINE

import enslint.cache
import enslint.runner
from enslint.cache import CacheEntry, ResultCache, entry_key
from enslint.checking import FileJob
from enslint.cli import main
from enslint.config import Config
from enslint.engine.transaction import fix_file
from enslint.rules import Settings


def _variant(i: int) -> str:
    """FLAGGED with its own class name: every file's fixed text differs."""
    return FLAGGED.replace("class Heads(", f"class Heads{i}(")


def _fixed(text: str, tmp_path) -> str:
    path = tmp_path / "reference.py"
    path.write_text(text)
    codes = Config(root=tmp_path).enabled_codes()
    return fix_file(FileJob("reference.py", str(path), codes, Settings()), True).after


def _enslint(*args: str, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "enslint", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_sigkill_during_fix_leaves_every_file_original_or_fixed(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    originals = {}
    for i in range(120):
        originals[f"m{i:03d}.py"] = _variant(i)
        (tree / f"m{i:03d}.py").write_text(originals[f"m{i:03d}.py"])
    fixed = {name: _fixed(text, tmp_path) for name, text in originals.items()}
    run = _enslint("check", "--no-cache", "--fix", "--unsafe-fixes", ".", cwd=tree)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and all((tree / name).read_text() == text for name, text in originals.items()):
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)  # as soon as the first file is written: mid-run
    run.wait()
    states = {"original": 0, "fixed": 0}
    for name in originals:
        text = (tree / name).read_text()
        assert text in (originals[name], fixed[name]), f"{name} is torn"
        states["original" if text == originals[name] else "fixed"] += 1
    assert states["fixed"] >= 1
    # No temporary file left; the one new file is the helper module, whole.
    assert not [
        p.name for p in tree.iterdir() if p.suffix == ".py" and p.name not in {*originals, "fused_ensembles.py"}
    ]
    helpers = tree / "fused_ensembles.py"
    assert not helpers.exists() or "import torch" in helpers.read_text()
    compile(helpers.read_text() if helpers.exists() else "", "fused_ensembles.py", "exec")


def test_two_fix_runs_at_once_on_one_tree(tmp_path):
    tree = tmp_path / "tree"
    tree.mkdir()
    originals = {f"m{i:02d}.py": _variant(i) for i in range(40)}
    for name, text in originals.items():
        (tree / name).write_text(text)
    runs = [_enslint("check", "--fix", "--unsafe-fixes", ".", cwd=tree) for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode in (0, 1), err
        assert "Traceback" not in err and "internal error" not in err + out, err
    for name, text in originals.items():
        assert (tree / name).read_text() == _fixed(text, tmp_path), name
    # Each run counts the fixes it wrote: together, one run's worth (each file once).
    applied = [int(m.group(1)) for out, _ in outputs for m in re.finditer(r"Applied (\d+) fix", out)]
    alone = tmp_path / "alone"
    alone.mkdir()
    for name, text in originals.items():
        (alone / name).write_text(text)
    out, _ = _enslint("check", "--fix", "--unsafe-fixes", ".", cwd=alone).communicate(timeout=600)
    assert sum(applied) == int(re.search(r"Applied (\d+) fix", out).group(1))


def test_a_file_removed_between_discovery_and_reading(project, monkeypatch):
    for name in ("a.py", "b.py", "c.py"):
        (project / name).write_text(FLAGGED)
    real = enslint.runner.make_jobs

    def then_remove(files, *args, **kwargs):
        jobs = real(files, *args, **kwargs)
        (project / "b.py").unlink()
        return jobs

    monkeypatch.setattr(enslint.runner, "make_jobs", then_remove)
    for extra in ([], ["--fix", "--unsafe-fixes"]):
        (project / "b.py").write_text(FLAGGED)
        result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", *extra, "."])
        assert result.exit_code == 1, result.output
        assert "b.py:1:1: ENS000 cannot read file: No such file or directory" in result.output
        assert "Traceback" not in result.output
        if not extra:
            assert f"a.py:{FLAGGED_LINE}:" in result.output and f"c.py:{FLAGGED_LINE}:" in result.output
        else:
            assert (project / "a.py").read_text() != FLAGGED and (project / "c.py").read_text() != FLAGGED


def test_a_cache_from_another_enslint_version_is_not_used(project):
    """An older enslint's entry for this very file (same bytes, same rules) says it is
    clean; this version must not believe it."""
    data = FLAGGED.encode()
    (project / "m.py").write_bytes(data)
    config = Config(root=project)
    cache = ResultCache(project / enslint.cache.CACHE_FOLDER)
    for fingerprint in ("0.0.1 of enslint", enslint.cache.code_fingerprint() + "-older"):
        cache.put(
            entry_key(fingerprint, config.enabled_codes(), Settings(min_members=config.min_members), data),
            CacheEntry([], {}, ()),
        )
    result = CliRunner().invoke(main, ["check", "--output-format", "concise", "."])
    assert result.exit_code == 1 and f"m.py:{FLAGGED_LINE}:" in result.output
    again = CliRunner().invoke(main, ["check", "--output-format", "concise", "."])  # now from its own entry
    assert again.output == result.output


def test_paths_with_spaces_and_non_ascii(project):
    folder = project / "my models" / "ensembles ünïcode"
    folder.mkdir(parents=True)
    path = folder / "modèle à têtes.py"
    path.write_text(FLAGGED)
    result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "json", "my models"])
    assert result.exit_code == 1
    (finding,) = json.loads(result.output)
    assert finding["filename"].endswith("modèle à têtes.py") and finding["location"]["row"] == FLAGGED_LINE
    fixed = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", str(path)])
    assert fixed.exit_code == 0, fixed.output
    compile(path.read_text(), str(path), "exec")


def test_a_hundred_thousand_line_file(project):
    """Flagged classes at the top, the middle and the end of 100,000 lines: all found on
    their lines, all fixed, and the fixed file still runs as Python."""
    filler = [f"CONSTANT_{i} = {i}" for i in range(33_340)]
    parts = [FLAGGED.replace("class Heads(", f"class Heads{i}(") for i in range(3)]
    text = (
        parts[0]
        + "\n".join(filler)
        + "\n\n"
        + parts[1].split("\n", 3)[3]
        + "\n".join(filler)
        + "\n\n"
        + parts[2].split("\n", 3)[3]
        + "\n".join(filler)
        + "\n"
    )
    lines = text.splitlines()
    assert len(lines) >= 100_000
    (project / "long.py").write_text(text)
    expected = [i + 1 for i, line in enumerate(lines) if "return torch.cat" in line]
    result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "json", "long.py"])
    assert [f["location"]["row"] for f in json.loads(result.output)] == expected
    start = time.monotonic()
    fixed = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", "long.py"])
    assert fixed.exit_code == 0, fixed.output
    assert time.monotonic() - start < 300  # a bound against a hang, not a speed goal
    after = (project / "long.py").read_text()
    compile(after, "long.py", "exec")
    assert after.count("return torch.cat") == 0 and after.count("CONSTANT_") == 3 * 33_340
    assert os.path.getsize(project / "long.py") > 1_000_000


def test_fixes_that_would_not_parse_are_refused_small_and_big(tmp_path, monkeypatch):
    """A fixed text Python rejects is never written. A big text (past PIECE_BYTES) is
    judged by the check that follows each pass, which parses it in its own processes:
    the fixing process never holds Python's tree of it (most of a GB for 5 MB)."""
    import dataclasses

    import enslint.engine.transaction as transaction
    from enslint.analysis.pieces import PIECE_BYTES

    real_apply, real_parse = transaction.apply_fixes, transaction.target_check
    parsed_here: list[int] = []

    def broken(text, fixes):
        result = real_apply(text, fixes)
        return dataclasses.replace(result, text=result.text + "\ndef broken(:\n")

    def spy(text, target):
        parsed_here.append(len(text))
        return real_parse(text, target)

    monkeypatch.setattr(transaction, "apply_fixes", broken)
    monkeypatch.setattr(transaction, "target_check", spy)
    codes = Config(root=tmp_path).enabled_codes()
    filler = "".join(f"CONSTANT_{i} = {i}\n" for i in range(PIECE_BYTES // 16))
    for name, text in (("small.py", FLAGGED), ("big.py", FLAGGED + filler)):
        path = tmp_path / name
        path.write_text(text)
        outcome = fix_file(FileJob(name, str(path), codes, Settings()), True)
        assert outcome.error is not None and "the fixes would not parse" in outcome.error, (name, outcome.error)
        assert outcome.after == outcome.before == text and not outcome.changed
        assert [d.code for d in outcome.remaining] == ["ENS001"]
    assert parsed_here and max(parsed_here) < PIECE_BYTES
