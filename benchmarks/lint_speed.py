"""How fast `enslint check` is, side by side with TorchFix and ruff, on one corpus.

The corpus is the `.py` files of the installed torch package (found without importing
torch). Each tool runs as its users run it, as a subprocess on the whole folder; the
table gives wall seconds, files per second and enslint's speed relative to each tool.
It also times `enslint check` on one file, as pre-commit runs it: in a project whose
other files are read for the index (from the cache when unchanged), the checked file
itself changed since the last run (the target: under 0.5 s wall).

    pip install -e . torch==2.13.0 ruff
    python -m venv /tmp/tf && /tmp/tf/bin/pip install torchfix   # its own environment:
    export PATH=/tmp/tf/bin:$PATH                                # it pins libcst<1.6
    python benchmarks/lint_speed.py                # TorchFix takes about 15 minutes here
    python benchmarks/lint_speed.py --subfolder nn # torch/nn only
    python benchmarks/lint_speed.py --sample 200   # every k-th file, for a quick look
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SMALL_FILE = ROOT / "fixtures" / "positive" / "seed_independent_mlps.py"
PROJECT = ROOT / "fixtures" / "projects" / "rl_critics"


def torch_folder() -> Path:
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("torch is not installed: pip install torch==2.13.0")
    return Path(list(spec.submodule_search_locations)[0])


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if p.is_file())


def wall(command: list[str], cwd: Path | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        print(f"  ! {' '.join(command[:4])} ... exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return elapsed, done.returncode


def tool(name: str) -> str | None:
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=0, help="use only this many files, evenly spread (0: all)")
    parser.add_argument("--subfolder", default="", help="a folder of the torch package to use instead (nn)")
    parser.add_argument("--skip-torchfix", action="store_true", help="leave TorchFix out (it takes minutes)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of the fast tools; the best is kept")
    args = parser.parse_args()
    # As an installed enslint runs: pip writes the bytecode of what it installs (torch's,
    # libcst's, TorchFix's), but an editable checkout has only what Python wrote at an
    # earlier import, and none where PYTHONDONTWRITEBYTECODE is set (as on our machines),
    # which makes every run compile enslint's source again.
    compileall.compile_dir(ROOT / "enslint", quiet=1)

    folder = torch_folder() / args.subfolder
    files = corpus_files(folder)
    with tempfile.TemporaryDirectory() as scratch:
        target = folder
        if args.sample and args.sample < len(files):
            step = len(files) / args.sample
            chosen = [files[int(i * step)] for i in range(args.sample)]
            target = Path(scratch) / "corpus"
            for i, path in enumerate(chosen):
                destination = target / f"{i:05d}_{path.name}"
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
            files = chosen
        n = len(files)
        lines = sum(p.read_bytes().count(b"\n") for p in files)
        print(f"corpus: {target} ({n} files, {lines:,} lines), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")

        enslint = [sys.executable, "-m", "enslint", "check", "--exit-zero", str(target)]
        runs: list[tuple[str, list[str], int]] = [("enslint check", enslint + ["--no-cache"], args.repeat)]
        ruff = tool("ruff")
        if ruff:
            runs.append(
                (
                    "ruff check (default rules)",
                    [ruff, "check", "--isolated", "--no-cache", "--exit-zero", "-q", str(target)],
                    args.repeat,
                )
            )
            runs.append(
                (
                    "ruff check --select ALL",
                    [ruff, "check", "--isolated", "--no-cache", "--exit-zero", "-q", "--select", "ALL", str(target)],
                    args.repeat,
                )
            )
        else:
            print("ruff not installed (pip install ruff): left out")
        torchfix = tool("torchfix")
        if torchfix and not args.skip_torchfix:
            runs.append(("torchfix", [torchfix, str(target)], 1))
        elif not torchfix:
            print("TorchFix not installed (pip install torchfix): left out")

        results: dict[str, float] = {}
        for name, command, repeat in runs:
            times = [wall(command)[0] for _ in range(max(1, repeat))]
            results[name] = min(times)
            print(f"  {name}: {', '.join(f'{t:.2f}s' for t in times)}", flush=True)
        # The result cache lives beside the configuration (here: the working folder).
        cache_home = Path(scratch) / "cache-home"
        cache_home.mkdir()
        wall(enslint, cwd=cache_home)
        results["enslint check (warm cache)"] = min(
            wall(enslint, cwd=cache_home)[0] for _ in range(max(1, args.repeat))
        )

    ours = results["enslint check"]
    print()
    print("| tool | wall s | files/s | its wall / enslint's (cold) |")
    print("|---|---:|---:|---:|")
    for name, seconds in results.items():
        print(f"| {name} | {seconds:.2f} | {n / seconds:.1f} | {seconds / ours:.2f}x |")

    with tempfile.TemporaryDirectory() as home:
        # Pre-commit's case: one changed file of a project whose index is warm.
        project = Path(home) / "project"
        shutil.copytree(PROJECT, project)
        (project / "pyproject.toml").write_text("[project]\nname = 'critics'\n")
        target = project / "rl_critics" / "ensemble.py"
        one = [sys.executable, "-m", "enslint", "check", str(target)]
        wall(one, cwd=project)  # builds the index and the cache
        changed = []
        for i in range(7):
            with target.open("a") as stream:
                stream.write(f"# edit {i}\n")
            changed.append(wall(one, cwd=project)[0])
        unchanged = [wall(one, cwd=project)[0] for _ in range(7)]

        small = [sys.executable, "-m", "enslint", "check", str(SMALL_FILE)]
        cold = [wall(small + ["--no-cache"], cwd=Path(home))[0] for _ in range(7)]
        warm = [wall(small, cwd=Path(home))[0] for _ in range(7)][1:]
        plain = Path(home) / "plain.py"
        plain.write_text("import torch\n\n\ndef add(a, b):\n    return torch.add(a, b)\n")
        no_module = [
            wall([sys.executable, "-m", "enslint", "check", "--no-cache", str(plain)], cwd=Path(home))[0]
            for _ in range(7)
        ]
        help_times = [wall([sys.executable, "-m", "enslint", "--help"])[0] for _ in range(5)]
    print()
    print(
        f"enslint check, one file of a project ({PROJECT.name}/rl_critics/ensemble.py), median wall over 7 runs (target < 0.5 s):"
    )
    print(
        f"  the file changed since the last run, the rest of the project unchanged: {statistics.median(changed):.3f}s"
    )
    print(f"  nothing changed: {statistics.median(unchanged):.3f}s")
    print(f"enslint check, one small file with findings ({SMALL_FILE.name}), median wall over runs:")
    print(f"  cold (--no-cache, parses with libcst): {statistics.median(cold):.3f}s")
    print(f"  unchanged since the last run (cache):  {statistics.median(warm):.3f}s")
    print(f"  a small torch file with no member collection: {statistics.median(no_module):.3f}s")
    print(f"enslint --help: {statistics.median(help_times):.3f}s")
    libcst_alone = statistics.median(wall([sys.executable, "-c", "import libcst"])[0] for _ in range(7))
    print(f"for reference, python -c 'import libcst' alone: {libcst_alone:.3f}s")
    print(f"the changed file against it: {statistics.median(changed) / libcst_alone:.2f}x (target <= 2.0x)")


if __name__ == "__main__":
    main()
