"""Fuzzing: grammar-generated programs (hypothesmith) and mutated fixtures (hypothesis).

Properties, whatever the input:
- `check` never raises: every outcome is findings or ENS000;
- ENS000 agrees with Python: a file Python's parser rejects is ENS000, one it accepts
  is not ENS000 for a syntax reason;
- `--fix` output parses and a second `--fix` changes nothing (idempotent), with or
  without a final newline.
The example counts are kept small for CI (a few seconds each); raise them with
`ENSLINT_FUZZ_EXAMPLES` for a longer local run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import hypothesmith
import pytest
from click.testing import CliRunner
from conftest import FIXTURES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enslint.checking import FileJob, check_bytes
from enslint.cli import main
from enslint.config import Config
from enslint.engine.transaction import fix_file
from enslint.rules import Settings

EXAMPLES = int(os.environ.get("ENSLINT_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
CODES = Config(root=Path(".")).enabled_codes()
# Every fixture with a finding: seeds for mutation.
SEEDS = [p.read_text() for p in sorted((FIXTURES / "positive").glob("*.py"))]
SYNTAX_ENS000 = ("syntax error", "cannot parse", "cannot decode", "nested too deeply")


def job(name: str = "fuzz.py") -> FileJob:
    return FileJob(name, name, CODES, Settings())


def python_accepts(source: str | bytes) -> bool:
    """Python's verdict: what `compile` takes (its parser's and its compiler's checks,
    `break` outside a loop among them) runs. Its nesting budget shrinks with the caller's
    stack, so code nested too deeply here is judged by a fresh interpreter, as `python
    file.py` judges it (the limit makes up for the frame `-c` runs in)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "m.py", "exec", dont_inherit=True)
    except RecursionError:
        data = source.encode("utf-8", "surrogatepass") if isinstance(source, str) else source
        script = "import sys; sys.setrecursionlimit(1002); compile(sys.stdin.buffer.read(), 'm.py', 'exec')"
        return (
            subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, check=False).returncode == 0
        )
    except (SyntaxError, ValueError, MemoryError):
        return False
    return True


def assert_agrees_with_python(source: str) -> None:
    data = source.encode("utf-8")
    diagnostics = check_bytes(job(), data)
    syntax = [d for d in diagnostics if d.code == "ENS000" and any(s in d.message for s in SYNTAX_ENS000)]
    # Python judges the file, its bytes: a leading BOM, a coding cookie, are its to read.
    if python_accepts(data):
        # libcst may still be unable to take what Python takes (deep nesting): that is
        # "cannot analyse", never a syntax error Python would not report.
        assert not [d for d in syntax if "syntax error" in d.message], (source, syntax)
    else:
        assert syntax, (source, diagnostics)


@FUZZ
@given(hypothesmith.from_grammar())
def test_grammar_generated_programs(source):
    assert_agrees_with_python(source)


@st.composite
def mutated_fixture(draw):
    """A fixture with lines deleted, swapped, truncated or injected, maybe CRLF."""
    lines = draw(st.sampled_from(SEEDS)).split("\n")
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        kind = draw(st.sampled_from(["delete", "swap", "truncate", "inject", "indent"]))
        if kind == "delete":
            del lines[i]
        elif kind == "swap" and i + 1 < len(lines):
            lines[i], lines[i + 1] = lines[i + 1], lines[i]
        elif kind == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif kind == "inject":
            token = draw(
                st.sampled_from(
                    [
                        "(",
                        ")",
                        "[",
                        ":",
                        "lambda",
                        "\\",
                        "'",
                        '"""',
                        "\t",
                        "\x0c",
                        "\u2028",
                        "\ufeff",
                        "for",
                        "self.heads",
                    ]
                )
            )
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + token + lines[i][at:]
        else:
            lines[i] = "    " + lines[i]
        if not lines:
            lines = [""]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(lines)
    return text.rstrip("\r\n") if draw(st.booleans()) else text


@FUZZ
@given(mutated_fixture())
def test_mutated_fixtures_agree_with_python(source):
    assert_agrees_with_python(source)


@FUZZ
@given(mutated_fixture(), st.booleans())
def test_fix_output_parses_and_is_idempotent(tmp_path_factory, source, unsafe):
    folder = tmp_path_factory.mktemp("fix")
    path = folder / "m.py"
    path.write_bytes(source.encode("utf-8"))
    first = fix_file(FileJob("m.py", str(path), CODES, Settings()), unsafe)
    if not first.changed:
        return
    assert python_accepts(first.after), first.after
    path.write_bytes(first.after.encode("utf-8"))
    second = fix_file(FileJob("m.py", str(path), CODES, Settings()), unsafe)
    assert not second.changed or second.fixed == 0, second.diff()


@FUZZ
@given(st.one_of(hypothesmith.from_grammar(), mutated_fixture()))
def test_the_command_line_on_any_file(tmp_path_factory, source):
    """As a user runs it: no traceback, an exit status in {0, 1, 2}, the same JSON from
    two runs, and `--fix` never writes a file it has nothing to fix in."""
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "m.py"
    path.write_bytes(source.encode("utf-8"))
    runs = [CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "json", str(path)]) for _ in range(2)]
    for run in runs:
        assert run.exit_code in (0, 1, 2) and "Traceback" not in run.output, run.output
        assert run.exception is None or isinstance(run.exception, SystemExit), run.exception
    assert runs[0].output == runs[1].output
    fixable = [d for d in json.loads(runs[0].output) if d.get("fix")]
    if not fixable:
        before = path.stat().st_mtime_ns, path.read_bytes()
        fixed = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--unsafe-fixes", str(path)])
        assert fixed.exit_code in (0, 1, 2)
        assert (path.stat().st_mtime_ns, path.read_bytes()) == before


@pytest.mark.parametrize("seed", range(len(SEEDS)), ids=[p.name for p in sorted((FIXTURES / "positive").glob("*.py"))])
def test_a_final_newline_does_not_change_the_rewrite(seed, tmp_path):
    """The same file with and without its final newline gets the same fixes."""
    outcomes = []
    for ending in ("\n", ""):
        path = tmp_path / f"m{len(outcomes)}.py"
        path.write_text(SEEDS[seed].rstrip("\n") + ending)
        outcomes.append(fix_file(FileJob(path.name, str(path), CODES, Settings()), True).after.rstrip("\n"))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("seed", range(len(SEEDS)), ids=[p.name for p in sorted((FIXTURES / "positive").glob("*.py"))])
def test_form_feeds_in_indentation_change_nothing_but_themselves(seed, tmp_path):
    """Python ignores a form feed at the start of a line (it restarts the indentation
    count); libcst's tokenizer does not take it. With one on every line, the findings
    are the same, in the same places, and --fix writes the same code, form feeds kept."""
    plain = SEEDS[seed]
    fed = "".join("\x0c" + line for line in plain.splitlines(keepends=True))
    compile(fed, "fed.py", "exec")  # Python runs it
    results = []
    for name, text in (("plain.py", plain), ("fed.py", fed)):
        path = tmp_path / name
        path.write_text(text)
        job = FileJob(name, str(path), CODES, Settings())
        found = [(d.row, d.column - (name == "fed.py"), d.code, d.message) for d in check_bytes(job, text.encode())]
        results.append((found, fix_file(job, True).after))
    (plain_found, plain_fixed), (fed_found, fed_fixed) = results
    assert fed_found == plain_found
    assert fed_fixed.replace("\x0c", "") == plain_fixed
    # The lines before the first edit keep their form feeds, as the file had them.
    untouched = next(
        i for i, (a, b) in enumerate(zip([*plain.splitlines(), None], [*plain_fixed.splitlines(), ""])) if a != b
    )
    assert fed_fixed.splitlines()[:untouched] == fed.splitlines()[:untouched]
