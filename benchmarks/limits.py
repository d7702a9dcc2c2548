"""Measured limits: how deep or long a construct Python's parser, libcst's native parser
and enslint each take, and what enslint answers at Python's limit.

    python benchmarks/limits.py                  # every family, the table in Markdown
    python benchmarks/limits.py --only sum,parens

For each family of constructs (nested parentheses, long sums, attribute chains, ...)
the size n is searched by bisection, each try in its own process (a native crash is an
outcome, not the end of the run):
- python: the largest n `ast.parse` accepts (its own "too many nested parentheses", a
  RecursionError or MemoryError above it);
- libcst: the largest n `libcst.parse_module` parses, and how it fails above (an
  exception, or a signal: a crash);
- enslint at Python's largest n (a file Python accepts): its answer (findings or
  ENS000's reason), its exit status and how long it took; every answer must come in
  well under a second per MB and never as a crash (exit 139).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEADER = "import torch\nfrom torch import nn  # ModuleList for\n"
# A finding, so that an analysed file says so: "1 finding".
TAIL = """


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(8, 1) for _ in range(4)])

    def forward(self, x):
        return torch.stack([head(x) for head in self.heads], dim=1)
"""

# name: (the construct at size n, the largest n tried). Deep families nest (Python's
# parser stops them); flat ones only grow wide, and Python takes them at any size.
FAMILIES = {
    "parens": (lambda n: "x = " + "(" * n + "1" + ")" * n, 100_000),
    "lists": (lambda n: "x = " + "[" * n + "]" * n, 100_000),
    "calls": (lambda n: "x = " + "f(" * n + ")" * n, 100_000),
    "sum": (lambda n: "y = " + " + ".join(["x"] * n), 100_000),
    "unary": (lambda n: "y = " + "-" * n + "x", 100_000),
    "not": (lambda n: "y = " + "not " * n + "x", 100_000),
    "attributes": (lambda n: "y = x" + ".a" * n, 100_000),
    "call-chain": (lambda n: "y = f" + "()" * n, 100_000),
    "subscripts": (lambda n: "y = x" + "[0]" * n, 100_000),
    "lambdas": (lambda n: "y = " + "lambda: " * n + "x", 100_000),
    "ternary": (lambda n: "y = " + "x if x else " * n + "x", 100_000),
    "indent": (lambda n: "".join("    " * i + "if x:\n" for i in range(n)) + "    " * n + "pass", 2_000),
    "elif": (lambda n: "if x:\n    pass\n" + "elif x:\n    pass\n" * n, 100_000),
    "and": (lambda n: "y = " + " and ".join(["x"] * n), 100_000),
    "or": (lambda n: "y = " + " or ".join(["x"] * n), 100_000),
    "compare": (lambda n: "y = x" + " < x" * n, 100_000),
    "strings": (lambda n: "y = " + '"a" ' * n, 100_000),
    "elements": (lambda n: "y = [" + "1, " * n + "]", 100_000),
    "arguments": (lambda n: "y = f(" + "x, " * n + ")", 100_000),
    "targets": (lambda n: "y = " * n + "1", 100_000),
    "semicolons": (lambda n: "x = 1; " * n + "x = 1", 100_000),
    "comprehension-ifs": (lambda n: "y = [a for a in x" + " if a" * n + "]", 100_000),
    "comprehension-fors": (lambda n: "y = [a" + " for a in x" * n + "]", 100_000),
    "imports": (lambda n: "import " + ", ".join(f"m{i}" for i in range(n)), 100_000),
    "decorators": (lambda n: "@d\n" * n + "def f():\n    pass", 100_000),
    "with-items": (lambda n: "with " + ", ".join(["x"] * n) + ":\n    pass", 100_000),
    "bases": (lambda n: "class B(" + "x, " * n + "):\n    pass", 100_000),
}

_PYTHON = """
import ast, sys, warnings
warnings.simplefilter("ignore")
try:
    ast.parse(sys.stdin.read())
except (SyntaxError, RecursionError, MemoryError, ValueError) as e:
    print(type(e).__name__ + ": " + str(e).splitlines()[0] if str(e) else type(e).__name__)
    sys.exit(1)
"""

_LIBCST = """
import sys, libcst
try:
    libcst.parse_module(sys.stdin.read())
except Exception as e:
    print(type(e).__name__ + ": " + (str(e).strip().splitlines() or [""])[0][:80])
    sys.exit(1)
"""


def text(family: str, n: int) -> str:
    return HEADER + FAMILIES[family][0](n) + TAIL


def _try(script: str, source: str) -> tuple[bool, str]:
    """(parsed, why not): a crash is `signal N`."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], input=source, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return False, "over 120 s"
    if done.returncode < 0:
        return False, f"killed by signal {-done.returncode}"
    return done.returncode == 0, done.stdout.strip()


def largest(script: str, family: str, top: int) -> tuple[int, str]:
    """The largest n in [0, top] that parses (bisection), and the failure just above it."""
    low, high, why = 0, top + 1, "none up to the top"
    ok, reason = _try(script, text(family, top))
    if ok:
        return top, why
    high, why = top, reason
    while high - low > 1:
        middle = (low + high) // 2
        ok, reason = _try(script, text(family, middle))
        if ok:
            low = middle
        else:
            high, why = middle, reason
    return low, why


def enslint_answer(source: str) -> tuple[str, int, float]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "deep.py"
        path.write_text(source)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "enslint", "check", str(path), "--no-cache", "--format", "concise"],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=600,
            check=False,
        )
        took = time.perf_counter() - start
    lines = [line for line in done.stdout.splitlines() if "ENS" in line]
    answer = next((line.split(" ENS000 ", 1)[-1] for line in lines if " ENS000 " in line), None)
    if answer is None:
        answer = f"{len(lines)} findings" if lines else "no findings"
    return answer[:70], done.returncode, took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="comma-separated families")
    args = parser.parse_args()
    families = args.only.split(",") if args.only else list(FAMILIES)
    os.environ.pop("ENSLINT_DEBUG", None)
    print(
        "| family | Python takes up to | above it | libcst takes up to | above it | enslint at Python's limit | exit | time |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for family in families:
        python_max, python_why = largest(_PYTHON, family, FAMILIES[family][1])
        libcst_max, libcst_why = largest(_LIBCST, family, max(python_max, 1))
        answer, status, took = enslint_answer(text(family, python_max))
        libcst_cell = f"{libcst_max:,}" + (" (all Python takes)" if libcst_max >= python_max else "")
        print(
            f"| {family} | {python_max:,} | {python_why[:50]} | {libcst_cell} | {libcst_why[:50] if libcst_max < python_max else '-'} "
            f"| {answer} | {status} | {took:.2f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
