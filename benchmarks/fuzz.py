"""The long fuzzing run: counts of crashes, hangs, wrong ENS000, non-idempotent fixes and
torn files, per input family.

    python benchmarks/fuzz.py --examples 5000 --mutations 1000   # every family
    python benchmarks/fuzz.py --examples 200 --only grammar,mutated

Families: programs generated from Python's grammar (hypothesmith), mutated fixtures
(the mutations of tests/test_fuzz.py), every file of the installed torch package, and the
pathological files of issue 11. Every input is checked, and fixed (unsafe fixes too), in
enslint's own worker processes: a worker killed by a signal is a crash, one still running
after 30 s a hang. Per input:
- wrong ENS000: ENS000 for a syntax reason on a file Python compiles, or none on a file
  Python rejects;
- non-idempotent: the fixed text does not compile, or a second --fix changes it again;
- torn: after the fix is written (write_atomically), the file is neither the original nor
  the fixed text.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_fuzz import python_accepts  # noqa: E402  (the tests' oracle: Python's parser on the bytes)

from enslint.checking import FileJob, check_bytes
from enslint.config import Config  # noqa: E402
from enslint.engine.transaction import fix_file, write_atomically  # noqa: E402
from enslint.rules import Settings  # noqa: E402
from enslint.source import detect_encoding  # noqa: E402
from enslint.workers import isolated_map  # noqa: E402

HANG_SECONDS = 30
CODES = Config(root=ROOT).enabled_codes()
SYNTAX = ("syntax error", "cannot parse", "cannot decode")
COLUMNS = ("crashes", "hangs", "wrong ENS000", "non-idempotent", "torn")


def examine(data: bytes) -> Counter:
    """One input's defects (run in a worker)."""
    found: Counter = Counter()
    folder = Path(tempfile.mkdtemp(prefix="enslint-fuzz-"))
    path = folder / "m.py"
    path.write_bytes(data)
    job = FileJob("m.py", str(path), CODES, Settings())
    syntax = [d for d in check_bytes(job, data) if d.code == "ENS000" and any(s in d.message for s in SYNTAX)]
    if bool(syntax) == python_accepts(data):
        found["wrong ENS000"] += 1
    first = fix_file(job, unsafe=True)
    if first.changed:
        fixed = first.after.encode(detect_encoding(data))
        if not python_accepts(fixed):
            found["non-idempotent"] += 1
        else:
            write_atomically(first)
            written = path.read_bytes()
            if written not in (data, fixed):
                found["torn"] += 1
            second = fix_file(job, unsafe=True)
            if second.changed and second.fixed:
                found["non-idempotent"] += 1
    found["fixed" if first.changed else "refused" if first.error else "unchanged"] += 1
    for leftover in folder.iterdir():
        leftover.unlink()
    folder.rmdir()
    return found


def _died(data: bytes, reason: str) -> Counter:
    return Counter({"hangs" if reason.startswith("stopped") else "crashes": 1})


def _examples(strategy, count: int) -> list[bytes]:
    """`count` inputs drawn from a hypothesis strategy of source texts, as bytes."""
    from hypothesis import HealthCheck, given, settings

    found: list[bytes] = []

    @settings(max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(source: str) -> None:
        found.append(source.encode("utf-8", "surrogatepass"))

    collect()
    return found


def grammar_programs(count: int) -> list[bytes]:
    import hypothesmith

    return _examples(hypothesmith.from_grammar(), count)


def mutated_fixtures(count: int) -> list[bytes]:
    from test_fuzz import mutated_fixture

    return _examples(mutated_fixture(), count)


def torch_package(count: int) -> list[bytes]:
    import importlib.util

    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return []
    return [p.read_bytes() for p in sorted(Path(spec.origin).parent.rglob("*.py"))]


def pathological(count: int) -> list[bytes]:
    header = "import torch\nfrom torch import nn  # ModuleList for\n"
    tail = "class A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n"
    fixture = ROOT / "fixtures" / "positive" / "seed_shared_trunk_head_groups.py"
    seed = fixture.read_text() if fixture.exists() else header + tail
    bodies = [
        "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
        "y = " + " + ".join(["x"] * 50_000) + "\n",
        "y = " + " + ".join(["x"] * 3000) + "\n",
        "y = " + "-" * 20_000 + "x\n",
        "y = x" + ".a" * 20_000 + "\n",
        "y = f" + "()" * 20_000 + "\n",
        "y = x" + "[0]" * 20_000 + "\n",
        "y = " + "not " * 20_000 + "x\n",
        "y = " + "lambda: " * 2000 + "x\n",
        "y = [" + "1, " * 200_000 + "]\n",
        # Past libcst's limits (benchmarks/limits.py): its parser crashed on the chains.
        "y = " + " and ".join(["x"] * 20_000) + "\n",
        "y = " + " or ".join(["x"] * 20_000) + "\n",
        "y = " + '"a" ' * 5_000 + "\n",
        "y = [a" + " for a in x" * 5_000 + "]\n",
        "y = " + " + ".join(["x"] * 2_990) + "\n",  # Python runs it; within a level of its limit
        "def f():\n    return 1\n\n\\\n",  # a backslash-only line after a block
        's = "\\u12"\n',
        "type X = int\n",
        "x = 1\n\ufeffy = 2\n",
        "s = 'a\x00b'\n",
    ]
    found = [(header + body + tail).encode() for body in bodies]
    found.append(seed.replace("\n", "\r").encode())  # old-Mac line endings
    found.append(("# -*- coding: latin-1 -*-\r" + 's = "\xe9"\r' + seed.replace("\n", "\r")).encode("latin-1"))
    found.append("".join("\x0c" + line for line in seed.splitlines(keepends=True)).encode())
    found.append(seed.rstrip("\n").encode())
    found.append(b"\xef\xbb\xbf\xef\xbb\xbf" + seed.encode())  # a double BOM
    return found


FAMILIES = {
    "grammar": ("grammar-generated programs (hypothesmith)", grammar_programs),
    "mutated": ("mutated fixtures", mutated_fixtures),
    "torch": ("the installed torch package", torch_package),
    "pathological": ("the pathological files of issue 11", pathological),
}


def main() -> None:
    warnings.simplefilter("ignore", SyntaxWarning)  # hypothesmith compiles what it generates
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="grammar-generated programs")
    parser.add_argument("--mutations", type=int, help="mutated fixtures (default: as many as --examples)")
    parser.add_argument("--only", help="families, comma-separated: " + ",".join(FAMILIES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--save", type=Path, help="write every input with a defect here, named by family, number and defect"
    )
    options = parser.parse_args()
    chosen = options.only.split(",") if options.only else list(FAMILIES)
    print(
        f"{'family':<44} {'files':>6} "
        + " ".join(f"{c:>14}" for c in COLUMNS)
        + f" {'fixed':>6} {'refused':>7} {'seconds':>8}"
    )
    for name in chosen:
        title, make = FAMILIES[name]
        inputs = make(options.mutations if name == "mutated" and options.mutations else options.examples)
        start = time.perf_counter()
        found = isolated_map(examine, inputs, options.workers, _died, time_limit=HANG_SECONDS)
        counts = sum(found, Counter())
        if options.save:
            options.save.mkdir(parents=True, exist_ok=True)
            for number, (data, defects) in enumerate(zip(inputs, found)):
                for defect in set(defects) & set(COLUMNS):
                    (options.save / f"{name}-{number}-{defect.replace(' ', '-')}.py").write_bytes(data)
        seconds = time.perf_counter() - start
        row = " ".join(f"{counts[c]:>14}" for c in COLUMNS)
        print(
            f"{title:<44} {len(inputs):>6} {row} {counts['fixed']:>6} {counts['refused']:>7} {seconds:>8.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
