"""Time and peak memory of `enslint check` (and `--fix`) on generated big files.

    python benchmarks/big_files.py                 # the 5 MB file and the 100,000-line file
    python benchmarks/big_files.py --sizes 0.25,1  # many-class files of these MB, one by one

Each file is made of small ensemble classes (heads stacked in a comprehension), every one
of them a finding with fused rewrites. `check` runs with the cache off, `--fix` as a
user runs it; each in its own process, twice: once timed, once with its peak memory
summed over it and its workers (RSS and PSS, see _MEASURE). A small file's per-class time is measured the same way, for
the rate comparison.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from enslint.cache import CACHE_FOLDER

HEADER = "import torch\nfrom torch import nn\n\n"
CLASS = '''

class Ensemble{n}(nn.Module):
    """Member {n}: heads on a shared input."""

    def __init__(self, d: int = 16, k: int = 4) -> None:
        super().__init__()
        self.trunk = nn.Linear(d, d)
        self.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(k)])

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        return torch.stack([head(h) for head in self.heads], dim=1)
'''


def many_classes(count: int) -> str:
    return HEADER + "".join(CLASS.format(n=n) for n in range(count))


def classes_for(megabytes: float) -> int:
    return max(1, int(megabytes * 1_000_000 / len(CLASS.format(n=10_000))))


# Peak memory, sampled every 0.1 s from /proc (Linux) over enslint and all its worker
# processes, which run side by side: the sum of their resident sizes (RSS), which counts
# a page shared by a forked worker and its parent once per process, and the sum of
# their proportional sizes (PSS: a shared page split among its sharers), which is what
# the run occupies. Elsewhere the largest single process (getrusage), which undercounts.
_MEASURE = """
import os, resource, subprocess, sys, tempfile, time

def tree(root):
    children = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    children.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(pid))
            except OSError:
                pass
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found

def field(path, name):
    try:
        with open(path) as f:
            return next(int(line.split()[1]) for line in f if line.startswith(name))
    except (OSError, StopIteration):
        return 0

sample = sys.argv.pop(1) == "sample"
start = time.perf_counter()
output = tempfile.TemporaryFile("w+")  # a pipe would fill and stall a run of many findings
process = subprocess.Popen(sys.argv[1:], stdout=output, stderr=subprocess.DEVNULL, text=True)
rss = pss = 0
while process.poll() is None:
    if sample and os.path.isdir("/proc"):
        pids = tree(process.pid)
        rss = max(rss, sum(field(f"/proc/{pid}/status", "VmRSS:") for pid in pids))
        pss = max(pss, sum(field(f"/proc/{pid}/smaps_rollup", "Pss:") for pid in pids))
    time.sleep(0.1)
output.seek(0)
out = output.read()
seconds = time.perf_counter() - start
rss = max(rss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
lines = out.strip().splitlines() or [""]
print(seconds, rss / 1024, (pss or rss) / 1024, lines[-1], sep="\\t")
"""


def run(args: list[str], cwd: Path, sample: bool) -> tuple[float, float, float, str]:
    """Seconds, peak MB summed over enslint and its workers (RSS, PSS; sampled only when
    `sample`), the last line of output."""
    command = [sys.executable, "-c", _MEASURE, "sample" if sample else "time", sys.executable, "-m", "enslint", *args]
    measured = subprocess.run(command, capture_output=True, text=True, check=True, cwd=cwd)
    seconds, rss, pss, last = measured.stdout.rstrip("\n").split("\t", 3)
    return float(seconds), float(rss), float(pss), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="MB of many-class files, comma-separated (default: the two files of issue 11)")
    parser.add_argument("--no-fix", action="store_true", help="time check only")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="enslint-big-"))
    try:
        cases = []
        small = folder / "small.py"
        small.write_text(many_classes(20))
        cases.append(("20 classes", small, 20))
        if options.sizes:
            for size in options.sizes.split(","):
                count = classes_for(float(size))
                path = folder / f"classes_{size}mb.py"
                path.write_text(many_classes(count))
                cases.append((f"{size} MB", path, count))
        else:
            path = folder / "five_mb.py"
            path.write_text(many_classes(classes_for(5)))
            cases.append(("5 MB", path, classes_for(5)))
            lines_file = folder / "hundred_k_lines.py"
            count = 7_693
            text = many_classes(count)
            filler = 100_000 - text.count("\n")
            text += "".join(f"CONSTANT_{i} = {i}\n" for i in range(max(0, filler)))
            lines_file.write_text(text)
            cases.append(("100,000 lines", lines_file, count))
        print(
            f"{'file':<16} {'bytes':>10} {'classes':>8} {'command':<8} {'seconds':>8} {'ms/class':>9} {'RSS MB':>7} {'PSS MB':>7}  output"
        )
        for name, path, count in cases:
            commands = [("check", ["check", "--no-cache", str(path)])]
            if not options.no_fix:
                # As a user runs it: with the cache (empty at the start), which lets the
                # fixer reuse the check's analysis of the unchanged file.
                commands.append(("--fix", ["check", "--fix", "--unsafe-fixes", str(path)]))
            original = path.read_text()
            for label, args in commands:
                shutil.rmtree(folder / CACHE_FOLDER, ignore_errors=True)
                # Reading /proc's memory maps ten times a second takes CPU from the run:
                # the time is that of a run of its own, the memory a second run's.
                seconds, _, _, last = run(args, folder, sample=False)
                path.write_text(original)
                shutil.rmtree(folder / CACHE_FOLDER, ignore_errors=True)
                _, rss, pss, _ = run(args, folder, sample=True)
                print(
                    f"{name:<16} {len(original):>10,} {count:>8,} {label:<8} {seconds:>8.1f} {1000 * seconds / count:>9.2f} {rss:>7.0f} {pss:>7.0f}  {last[:60]}"
                )
                path.write_text(original)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
