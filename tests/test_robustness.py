"""Inputs that must not crash, hang or be judged differently from Python."""

from __future__ import annotations

import pytest
from helpers import findings_for

from enslint.checking import FileJob, check_bytes
from enslint.config import Config
from enslint.rules import Settings

# Candidates for analysis (they import a member container, and mention a loop), broken
# for Python or past libcst's limits.
HEADER = "import torch\nfrom torch.nn import ModuleList  # for\n"


def ens000(source: str) -> list[str]:
    job = FileJob("m.py", "m.py", Config(root=__import__("pathlib").Path(".")).enabled_codes(), Settings())
    return [d.message for d in check_bytes(job, source.encode("utf-8")) if d.code == "ENS000"]


@pytest.mark.parametrize(
    "body, said",
    [
        ('s = "\\u12"\n', "truncated \\uXXXX escape"),  # Python: (unicode error)
        ("type X = int\n", "syntax error for Python"),  # 3.12 syntax
        ("x = 1\n\ufeffy = 2\n", "syntax error for Python"),  # a BOM that is not the first character
        ("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", "too many nested parentheses"),  # libcst's parser crashed on it
        (
            "y = " + " + ".join(["x"] * 50000) + "\n",
            "cannot parse",
        ),  # Python's recursion limit; libcst crashed after minutes
        # Python's compiler, not its parser, rejects these: they were analysed.
        ("for i in range(3):\n    pass\nbreak\n", "'break' outside loop"),
        (
            "x = 1\nfrom __future__ import annotations\n",
            "from __future__ imports must occur at the beginning of the file",
        ),
        ("def f(a, a):\n    pass\n", "duplicate argument 'a'"),
        ("def g():\n    x = 1\n    global x\n", "assigned to before global declaration"),
    ],
    ids=[
        "truncated-escape",
        "type-alias",
        "inner-bom",
        "deep-parentheses",
        "long-sum",
        "break-outside-loop",
        "late-future-import",
        "duplicate-argument",
        "late-global",
    ],
)
def test_what_python_rejects_is_ens000_even_for_a_candidate_file(body, said):
    (message,) = ens000(
        HEADER + body + "class A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n"
    )
    assert said in message


def test_what_python_accepts_is_analysed():
    source = HEADER + "x = 1\ny = " + " + ".join(["x"] * 800) + "\n"
    assert ens000(source) == []
    assert findings_for(HEADER + "x = 1\n") == []


def test_an_encoding_cookie_with_old_mac_line_endings_is_read_as_python_reads_it():
    source = '# -*- coding: latin-1 -*-\rs = "\xe9"\rimport torch\r'.encode("latin-1")
    compile(source, "m.py", "exec")  # Python accepts it
    job = FileJob("m.py", "m.py", Config(root=__import__("pathlib").Path(".")).enabled_codes(), Settings())
    assert check_bytes(job, source) == []


def test_a_backslash_only_line_after_a_block_is_analysed():
    """libcst's tokenizer rejects a backslash-only line after an indented block, which
    Python joins away (found by benchmarks/fuzz.py); libcst now reads it as a blank line."""
    source = (
        HEADER
        + "class B:\n    def f(self):\n        return 1\n\n\\\nclass A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n"
    )
    compile(source, "m.py", "exec")  # Python runs it
    assert ens000(source) == []


TAIL = "class A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n"


@pytest.mark.parametrize(
    "body, said",
    [
        (
            "y = " + '"a" ' * 3_500 + "\n",
            "3,500 strings written one after another are more than libcst's parser takes (3,000)",
        ),
        ("y = (\n" + '    "a"  # part\n' * 3_500 + ")\n", "3,500 strings written one after another"),
        (
            "y = [a" + " for a in x" * 3_500 + "]\n",
            "a comprehension of 3,500 `for` clauses is more than libcst's parser takes (3,000)",
        ),
    ],
    ids=["strings", "strings-over-lines", "comprehension-clauses"],
)
def test_constructs_libcst_rejects_are_named_not_blamed_on_its_syntax(body, said):
    """libcst's parser rejects these where Python takes them (benchmarks/limits.py): the
    ENS000 said "libcst cannot parse this syntax", which reads as a syntax error. It now
    names the construct and libcst's measured limit, without calling libcst."""
    (message,) = ens000(HEADER + body + TAIL)
    assert said in message and message.startswith("cannot analyse: ")
    at_the_limit = {"strings": "y = " + '"a" ' * 3_000, "comprehension": "y = [a" + " for a in x" * 3_000 + "]"}
    kind = "comprehension" if "comprehension" in said else "strings"
    assert ens000(HEADER + at_the_limit[kind] + "\n" + TAIL) == []  # libcst takes it: analysed


@pytest.mark.parametrize("operator", ["and", "or"])
@pytest.mark.parametrize("size", ["small", "big"])
def test_a_boolean_chain_libcst_cannot_survive_is_ens000_without_a_crash(operator, size, tmp_path):
    """Python takes a chain of 100,000 `and`s; libcst's parser dies (SIGSEGV) past about
    7,000 (benchmarks/limits.py). Before: the file's worker died ("internal error ...
    killed by SIGSEGV") after more than a second; in-process the whole run died."""
    import subprocess
    import sys
    import time

    chain = "y = " + f" {operator} ".join(["x"] * 20_000) + "\n"
    filler = "".join(f"CONSTANT_{i} = {i}\n" for i in range(30_000)) if size == "big" else ""
    path = tmp_path / "m.py"
    path.write_text(HEADER + filler + chain + TAIL)
    start = time.perf_counter()
    for debug in ("", "1"):  # in worker processes, and in this one (where a crash is the run's)
        done = subprocess.run(
            [sys.executable, "-m", "enslint", "check", "--no-cache", "--output-format", "concise", str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**__import__("os").environ, "ENSLINT_DEBUG": debug},
            check=False,
        )
        assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
        (line,) = done.stdout.splitlines()
        row = 3 + (30_000 if size == "big" else 0)
        assert line.startswith(f"m.py:{row}:5: ENS000 cannot analyse: a chain of 20,000 `{operator}` operands"), line
    assert time.perf_counter() - start < 20


def test_a_boolean_chain_within_the_limit_is_analysed():
    chain = "y = " + " and ".join(["x"] * 300) + "\n"
    assert ens000(HEADER + chain + TAIL) == []


def _parse_at_depth(depth: int, source: str) -> bool:
    from enslint.parsing import python_check

    if depth:
        return _parse_at_depth(depth - 1, source)
    try:
        python_check(source)
    except (RecursionError, SyntaxError, MemoryError):
        return False
    return True


@pytest.mark.parametrize("terms, runs", [(2_900, True), (2_999, True), (3_000, False), (3_100, False)])
def test_nesting_is_judged_as_python_running_the_file_judges_it_from_any_depth(terms, runs, tmp_path):
    """Python's nesting budget shrinks with the stack it is parsed from: enslint's own
    frames (a worker's more than the main process's) made a 2,989-term sum that Python
    runs ENS000 in a worker and not in-process. Now the same answer from any depth, the
    answer of `python file.py`, to the last level."""
    import subprocess
    import sys

    source = "x = 1\ny = " + " + ".join(["x"] * terms) + "\n"
    (tmp_path / "m.py").write_text(source)
    ran = subprocess.run([sys.executable, str(tmp_path / "m.py")], capture_output=True, check=False).returncode == 0
    assert ran == runs
    assert [_parse_at_depth(depth, source) for depth in (0, 40, 400)] == [runs] * 3


def test_backslash_lines_are_blank_for_libcst_only_where_python_reads_them_so():
    from enslint.parsing import as_libcst_reads

    after_block = "class B:\n    def f(self):\n        return 1\n\n\\\nx = 1\n"
    assert as_libcst_reads(after_block) == (after_block.replace("\\\n", " \n"), [])
    in_string = 's = """\n\\\n"""\n'
    assert as_libcst_reads(in_string)[0] == in_string  # data, not code
    indented = "if x:\n    \\\n    y = 1\n"
    assert as_libcst_reads(indented)[0] == "if x:\n     \n    y = 1\n"
    other_indent = "if x:\n    y = 1\n\\\n    z = 1\n"  # Python: `z = 1` at column 0 - not a blank line
    assert as_libcst_reads(other_indent)[0] == other_indent
    for source in (after_block, in_string, indented):
        compile(source, "m.py", "exec")
        compile(as_libcst_reads(source)[0], "m.py", "exec")


def test_a_file_with_a_backslash_line_is_fixed_and_keeps_it(tmp_path):
    from test_cli import FLAGGED

    from enslint.engine.transaction import fix_file

    source = "def helper():\n    return 1\n\n\\\n" + FLAGGED
    path = tmp_path / "m.py"
    path.write_text(source)
    job = FileJob("m.py", str(path), Config(root=tmp_path).enabled_codes(), Settings())
    outcome = fix_file(job, True)
    assert outcome.error is None and outcome.changed and outcome.remaining == []
    assert "\n\\\n" in outcome.after
    compile(outcome.after, "m.py", "exec")


def _measured_limits():
    """benchmarks/limits.py, where the nesting families are measured: the same
    constructs, with a class that has a finding after them (`text`)."""
    import importlib.util

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("limits", ROOT / "benchmarks" / "limits.py")
    limits = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(limits)
    return limits


@pytest.mark.parametrize(
    "family, levels",
    [("sum", 2_990), ("elif", 2_990), ("ternary", 2_000), ("subscripts", 1_000), ("call-chain", 1_000)],
)
def test_code_nested_as_deep_as_python_takes_is_analysed(family, levels):
    """libcst and the analysis recurse a few frames per level: below enslint's own frames
    they stopped near 490 levels ("file is nested too deeply to analyse") where Python
    takes about 3,000. They now run in a thread with room for all of it."""
    from helpers import findings_for

    source = _measured_limits().text(family, levels)
    assert ens000(source) == []
    assert [code for _, code in findings_for(source)] == ["ENS001"]


def test_positions_of_a_module_too_deep_to_generate_raise_recursion_error():
    """The class-based position context recorded its node even while a RecursionError
    rose through it, and turned it into a KeyError (an internal error, not ENS000)."""
    import sys

    import libcst

    from enslint.analysis.positions import Positions

    source = "if x:\n    pass\n" + "elif x:\n    pass\n" * 600
    module = libcst.parse_module(source)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        with pytest.raises(RecursionError):
            Positions(module, source)
    finally:
        sys.setrecursionlimit(limit)
