"""`enslint check` end to end: output, exit codes, configuration, suppression, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import FIXTURES, ROOT, expected_findings

from enslint.cli import main

FLAGGED = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])

        def forward(self, x):
            return torch.cat([h(x) for h in self.heads], dim=-1)
    """
)
FLAGGED_LINE = 11
CLEAN = "import torch\n\nx = torch.ones(3)\n"


def check(*args: str):
    return CliRunner().invoke(main, ["check", *args])


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


# -- output and exit codes ----------------------------------------------------------------
def test_findings_exit_1_with_ruff_style_lines(project):
    write(project / "pkg" / "heads.py", FLAGGED)
    result = check("pkg")
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert (
        first
        == f"pkg/heads.py:{FLAGGED_LINE}:26: ENS001 `Heads.forward`: n `nn.Linear` members of `self.heads` run one by one; fix: one wide layer"
    )
    assert result.stdout.splitlines()[-2:] == [
        "Found 1 error in 1 file checked.",
        "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option).",
    ]
    assert "\x1b[" not in result.stdout  # not a terminal: no colour


def test_clean_exit_0(project):
    write(project / "ok.py", CLEAN)
    result = check()
    assert result.exit_code == 0
    assert result.stdout.startswith("All checks passed!")


def test_exit_zero(project):
    write(project / "heads.py", FLAGGED)
    result = check("--exit-zero")
    assert result.exit_code == 0 and "ENS001" in result.stdout


def test_missing_path_is_a_usage_error(project):
    result = check("nope")
    assert result.exit_code == 2
    assert result.stderr.strip() == "enslint: error: nope: no such file or directory"


def test_json_output_shape(project):
    path = write(project / "heads.py", FLAGGED)
    result = check("--format", "json")
    assert result.exit_code == 1
    (item,) = json.loads(result.stdout)
    assert item["code"] == "ENS001"
    assert item["filename"] == str(path.resolve())
    assert item["location"] == {"row": FLAGGED_LINE, "column": 26}
    assert item["end_location"]["row"] == FLAGGED_LINE and item["end_location"]["column"] > 26
    assert item["fix"]["applicability"] == "unsafe"  # the heads fuse into one nn.Linear
    assert item["fix"]["message"].startswith("Fuse the n heads into one `nn.Linear(d, n)`")
    assert item["url"].endswith("rules/ENS001.md")
    assert item["name"] == "loop-head-stacking" and "`self.heads`" in item["message"]


def test_the_slice_gradient_and_the_loop_are_two_findings_with_their_own_fixes(project):
    """The seed's grouped heads slice an activation: ENS003 (quadratic backward) carries
    the safe unbind fix, ENS002 (the per-member loop) the fused rewrite; after --fix the
    ENS003 finding is gone and only the loop's remains, fixable with --unsafe-fixes."""
    path = project / "seed.py"
    write(path, (FIXTURES / "positive" / "seed_shared_trunk_head_groups.py").read_text())
    found = {d["code"]: d for d in json.loads(check("--format", "json").stdout)}
    assert found["ENS003"]["fix"]["applicability"] == "safe" and found["ENS003"]["fix"]["message"].startswith(
        "Iterate `x.unbind(1)`"
    )
    assert found["ENS001"]["fix"]["applicability"] == "unsafe"
    assert "ENS003 [*]" in check().stdout and "ENS001 [*]" not in check().stdout
    check("--fix")
    remaining = {d["code"] for d in json.loads(check("--format", "json").stdout)}
    assert remaining == {"ENS001", "ENS002"}
    assert "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option)." in check().stdout
    check("--fix", "--unsafe-fixes")
    assert json.loads(check("--format", "json").stdout) == []


def test_a_loop_over_input_slices_has_only_the_fused_fix(project):
    """The seed's independent MLPs slice the input, which needs no gradient: no ENS003,
    and ENS002's fixes are the stacked rewrite (first) and the vmap form."""
    write(project / "seed.py", (FIXTURES / "positive" / "seed_independent_mlps.py").read_text())
    (finding,) = json.loads(check("--format", "json").stdout)
    assert (
        finding["code"] == "ENS002"
        and finding["fix"]["applicability"] == "unsafe"
        and "baddbmm" in finding["fix"]["message"]
    )
    assert "ENS002 [*]" not in check().stdout and "ENS002 [*]" in check("--unsafe-fixes").stdout


def test_json_when_clean_is_an_empty_array(project):
    write(project / "ok.py", CLEAN)
    result = check("--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_statistics(project):
    write(project / "a.py", FLAGGED)
    write(project / "b.py", FLAGGED)
    result = check("--statistics")
    assert result.exit_code == 1
    assert result.stdout.split() == ["2", "ENS001", "loop-head-stacking"]


def test_statistics_of_a_clean_tree_print_the_summary(project):
    write(project / "ok.py", CLEAN)
    result = check("--statistics")
    assert result.exit_code == 0 and result.stdout == "All checks passed! (1 file checked)\n"


def test_show_fixes_on_a_clean_tree_says_it_once(project):
    write(project / "ok.py", CLEAN)
    result = check("--fix", "--show-fixes")
    assert result.stdout == "No errors fixed.\nAll checks passed! (1 file checked)\n"


def test_output_is_sorted_and_deterministic(project):
    for name in ("b.py", "a.py", "sub/c.py"):
        write(project / name, FLAGGED + "\n\n" + FLAGGED.split("\n\n\n")[1].replace("Heads", "More"))
    outputs = {check().stdout for _ in range(3)}
    assert len(outputs) == 1
    lines = [line for line in outputs.pop().splitlines() if ": ENS" in line]
    keys = [(l.split(":")[0], int(l.split(":")[1]), int(l.split(":")[2])) for l in lines]
    assert keys == sorted(keys) and len(keys) == 6


def test_fixture_run_reports_every_declared_finding():
    result = CliRunner().invoke(main, ["check", str(FIXTURES), "--format", "json"])
    assert result.exit_code == 1
    found = sorted((Path(i["filename"]).name, i["location"]["row"], i["code"]) for i in json.loads(result.stdout))
    expected = sorted(
        (p.name, line, code) for p in FIXTURES.rglob("*.py") for line, code in expected_findings(p.read_text())
    )
    assert found == expected


# -- selection --------------------------------------------------------------------------
def test_select_and_ignore(project):
    write(project / "heads.py", FLAGGED)
    assert check("--select", "ENS002").exit_code == 0
    assert check("--ignore", "ENS001").exit_code == 0
    assert check("--ignore", "ENS0").exit_code == 0
    assert check("--select", "ENS001,ENS002").exit_code == 1
    result = check("--select", "XYZ1")
    assert result.exit_code == 2 and "unknown rule code or prefix 'XYZ1'" in result.stderr


# -- suppression ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "comment, suppressed",
    [
        ("# noqa", True),
        ("# noqa: ENS001", True),
        ("# NOQA:ENS001,ENS002", True),
        ("# noqa: ENS002", False),
    ],
)
def test_line_noqa(project, comment, suppressed):
    lines = FLAGGED.splitlines()
    lines[FLAGGED_LINE - 1] += "  " + comment
    write(project / "heads.py", "\n".join(lines) + "\n")
    assert check().exit_code == (0 if suppressed else 1)


def test_file_noqa(project):
    write(project / "heads.py", "# enslint: noqa\n" + FLAGGED)
    assert check().exit_code == 0


# -- bad input: one ENS000 finding, every other file still checked -----------------------------
def test_bad_files_are_ens000_and_others_still_checked(project):
    write(project / "a_syntax.py", "import torch\ndef broken(:\n    pass\n")
    write(project / "b_latin1.py", "x = 'caf\xe9'\n".encode("latin-1"))
    write(project / "c_plain_syntax.py", "def f(:\n")
    write(project / "heads.py", FLAGGED)
    result = check()
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("a_syntax.py:2:") and "ENS000 syntax error" in lines[0]
    assert lines[1].startswith("b_latin1.py:1:1: ENS000 cannot decode file")
    assert lines[2].startswith("c_plain_syntax.py:1:") and "ENS000 syntax error" in lines[2]
    assert lines[3].startswith(f"heads.py:{FLAGGED_LINE}:26: ENS001")


def test_declared_encoding_is_honoured(project):
    write(
        project / "legacy.py",
        ("# -*- coding: latin-1 -*-\n" + FLAGGED.replace("n):", "n):  # caf\xe9")).encode("latin-1"),
    )
    result = check()
    assert result.exit_code == 1 and "ENS001" in result.stdout and "ENS000" not in result.stdout


def test_unreadable_file(project):
    # A dangling link: unreadable even for root, which CI runs as.
    (project / "gone.py").symlink_to(project / "missing.py")
    write(project / "heads.py", FLAGGED)
    result = check()
    assert result.exit_code == 1
    assert result.stdout.startswith("gone.py:1:1: ENS000 cannot read file: No such file or directory")
    assert "heads.py:11:26: ENS001" in result.stdout


def test_unreadable_file_via_directory_named_py(project):
    (project / "weird.py").mkdir()
    write(project / "weird.py" / "inner.py", CLEAN)
    assert check("weird.py").exit_code == 0


# -- discovery --------------------------------------------------------------------------
def test_hidden_folders_and_virtualenvs_are_skipped(project):
    write(project / ".hidden" / "heads.py", FLAGGED)
    write(project / "myenv" / "pyvenv.cfg", "home = /usr\n")
    write(project / "myenv" / "lib" / "heads.py", FLAGGED)
    write(project / "node_modules" / "heads.py", FLAGGED)
    write(project / "src" / "ok.py", CLEAN)
    result = check()
    assert result.exit_code == 0, result.stdout


def test_explicit_file_in_hidden_folder_is_checked(project):
    write(project / ".hidden" / "heads.py", FLAGGED)
    assert check(".hidden/heads.py").exit_code == 1


# -- configuration ------------------------------------------------------------------------
def pyproject(project: Path, body: str) -> None:
    write(project / "pyproject.toml", "[project]\nname = 'x'\n\n[tool.enslint]\n" + textwrap.dedent(body))


def test_config_select_ignore(project):
    write(project / "heads.py", FLAGGED)
    pyproject(project, 'ignore = ["ENS001"]\n')
    assert check().exit_code == 0
    pyproject(project, 'select = ["ENS002"]\n')
    assert check().exit_code == 0
    assert check("--select", "ENS001").exit_code == 1  # the command line wins


def test_config_exclude_and_extend_exclude(project):
    write(project / "gen" / "heads.py", FLAGGED)
    write(project / "src" / "legacy" / "heads.py", FLAGGED)
    pyproject(project, 'extend-exclude = ["gen", "src/legacy/*"]\n')
    assert check().exit_code == 0
    assert check("gen/heads.py").exit_code == 0  # excludes hold for files named explicitly too


def test_config_per_file_ignores(project):
    write(project / "tests" / "test_heads.py", FLAGGED)
    write(project / "src" / "heads.py", FLAGGED)
    pyproject(project, '[tool.enslint.per-file-ignores]\n"tests/*" = ["ENS001"]\n')
    result = check()
    assert result.exit_code == 1
    assert "src/heads.py" in result.stdout and "tests/test_heads.py" not in result.stdout


def test_config_min_members(project):
    write(project / "heads.py", FLAGGED.replace("range(n)", "range(3)"))
    pyproject(project, "min-members = 4\n")
    assert check().exit_code == 0
    pyproject(project, "min-members = 3\n")
    assert check().exit_code == 1


def test_config_found_from_a_subfolder(project, monkeypatch):
    write(project / "pkg" / "heads.py", FLAGGED)
    pyproject(project, 'ignore = ["ENS001"]\n')
    monkeypatch.chdir(project / "pkg")
    assert check().exit_code == 0


@pytest.mark.parametrize(
    "body, message",
    [
        ("colour = true\n", "unknown key 'colour'"),
        ('select = ["E501"]\n', "'select': unknown rule code or prefix 'E501'"),
        ("min-members = 0\n", "'min-members' must be a whole number of at least 1"),
        ('min-members = "2"\n', "'min-members' must be a whole number of at least 1"),
        ("exclude = 3\n", "'exclude' must be a list of strings"),
        ('per-file-ignores = ["x"]\n', "'per-file-ignores' must be a table"),
        ("select = [\n", "invalid TOML"),
    ],
)
def test_bad_config_is_one_line_exit_2(project, body, message):
    write(project / "heads.py", FLAGGED)
    pyproject(project, body)
    result = check()
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


# -- the real process ---------------------------------------------------------------------
def run_enslint(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = str(ROOT) + os.pathsep + environment.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "enslint", *args], cwd=cwd, capture_output=True, text=True, env=environment
    )


def test_check_never_imports_torch_or_the_checked_code(project):
    write(project / "heads.py", FLAGGED + "\nraise SystemExit('imported!')\n")
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['enslint', 'check', '.']\n"
        "try:\n"
        "    runpy.run_module('enslint', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m == 'heads']\n"
        "    print('exit', exit.code, 'imported', bad)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", probe], cwd=project, capture_output=True, text=True, env=environment)
    assert result.stdout.splitlines()[-1] == "exit 1 imported []", result.stdout + result.stderr


def test_no_traceback_on_bad_config(project):
    pyproject(project, "nonsense = 1\n")
    result = run_enslint("check", cwd=project)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_colour_only_on_a_terminal_and_never_with_no_color(project):
    write(project / "heads.py", FLAGGED)
    from enslint.findings import Diagnostic
    from enslint.output import Style, text_lines

    diagnostic = Diagnostic("heads.py", 1, 1, "ENS001", "msg", "loop-head-stacking")
    assert "\x1b[" in text_lines([diagnostic], Style(True))[0]
    assert "\x1b[" not in text_lines([diagnostic], Style(False))[0]
    result = run_enslint("check", cwd=project, env={"NO_COLOR": "1"})
    assert "\x1b[" not in result.stdout


def test_python_dash_m_and_version(project):
    result = run_enslint("--version", cwd=project)
    assert result.returncode == 0 and "enslint" in result.stdout


# -- result cache ---------------------------------------------------------------------------
def test_cache_replays_results_and_misses_on_change(project):
    path = write(project / "heads.py", FLAGGED)
    first = check()
    entries = list((project / ".enslint_cache").rglob("*.json"))
    assert len(entries) == 1 and (project / ".enslint_cache" / ".gitignore").read_text().endswith("*\n")
    assert check().stdout == first.stdout  # served from the cache
    path.write_text(FLAGGED.replace("dim=-1", "dim=1"))
    assert check().exit_code == 1
    assert len(list((project / ".enslint_cache").rglob("*.json"))) == 2


def test_cache_key_covers_settings(project):
    write(project / "heads.py", FLAGGED.replace("range(n)", "range(3)"))
    assert check().exit_code == 1
    pyproject(project, "min-members = 4\n")
    assert check().exit_code == 0


def test_corrupt_cache_entry_is_ignored(project):
    write(project / "heads.py", FLAGGED)
    first = check()
    for entry in (project / ".enslint_cache").rglob("*.json"):
        entry.write_text("{not json")
    assert check().stdout == first.stdout


@pytest.mark.parametrize(
    "content",
    [
        "[[1]]",
        "[]",
        '{"rows": [[1]], "deps": {}, "exports": []}',
        '{"rows": [], "deps": {"x": 3}, "exports": []}',
        '{"rows": []}',
        '{"rows": [[1, 1, "ENS001", "m", "n", 1, 1, [["safe", "m", [[0, 1, "x", 1, 1]], ""]], ""]], "deps": {}, "exports": []}',
        '{"rows": [["1", 1, "ENS001", "m", "n", 1, 1, [], ""]], "deps": {}, "exports": []}',
    ],
    ids=[
        "old-list-of-junk",
        "old-empty-list",
        "short-row",
        "bad-deps",
        "missing-keys",
        "short-edit",
        "row-of-wrong-types",
    ],
)
def test_cache_entry_of_the_wrong_shape_is_a_miss(project, content):
    write(project / "heads.py", FLAGGED)
    first = check()
    for entry in (project / ".enslint_cache").rglob("*.json"):
        if not entry.name.startswith("index-"):
            entry.write_text(content)
    again = check()
    assert again.exit_code == 1 and again.stdout == first.stdout


def test_a_second_run_is_served_from_the_cache(project, monkeypatch):
    from enslint.checking import file as checking_file

    write(project / "heads.py", FLAGGED)
    first = check()

    def no_analysis(*args, **kwargs):
        raise AssertionError("analysed again: the cache entry was not used")

    monkeypatch.setattr(checking_file, "_analyse", no_analysis)
    assert check().stdout == first.stdout


def test_the_cache_key_holds_the_python_version(monkeypatch):
    import sys

    from enslint.cache import code_fingerprint

    ours = code_fingerprint()
    monkeypatch.setattr(sys, "version_info", (3, 99, 0, "final", 0))
    assert code_fingerprint() != ours


def test_no_cache_flag(project):
    write(project / "heads.py", FLAGGED)
    assert check("--no-cache").exit_code == 1
    assert not (project / ".enslint_cache").exists()


def test_folders_named_like_virtualenvs_are_source_unless_they_are_one(project):
    """`env/` and `venv/` packages are checked; a virtualenv is known by its pyvenv.cfg
    (or conda-meta), whatever its name."""
    write(project / "env" / "heads.py", FLAGGED)
    write(project / "venv" / "heads.py", FLAGGED)
    write(project / "tools" / "pyvenv.cfg", "home = /usr\n")
    write(project / "tools" / "heads.py", FLAGGED)
    write(project / "conda" / "conda-meta" / "history", "")
    write(project / "conda" / "heads.py", FLAGGED)
    result = check(".")
    flagged = {line.split(":")[0] for line in result.output.splitlines() if ": ENS" in line}
    assert flagged == {"env/heads.py", "venv/heads.py"}
