"""How well the code `--fix --unsafe-fixes` writes keeps to a project's style.

Copies a folder of Python files (by default fixtures/positive) into a temporary project
whose formatter is configured with a line length, then counts ruff's line-length and
blank-line problems (E501, E301-E306) before and after the fix; with --format, the copy is
formatted first and the formatter's check after the fix says whether it would change
anything enslint wrote.

    python benchmarks/fixed_code_style.py                        # ruff, line-length 100
    python benchmarks/fixed_code_style.py --format               # ruff format first
    python benchmarks/fixed_code_style.py --formatter black --line-length 79 --format
    python benchmarks/fixed_code_style.py path/to/package --line-length 88
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RULES = "E501,E301,E302,E303,E304,E305,E306"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        sys.exit(f"{name} is not installed: pip install -e '.[test]'")
    return found


def problems(project: Path, width: int) -> int:
    result = subprocess.run(
        [
            tool("ruff"),
            "check",
            "--preview",
            "--no-cache",
            "--select",
            RULES,
            "--line-length",
            str(width),
            "--output-format",
            "concise",
            "--exit-zero",
            "pkg",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for line in result.stdout.splitlines() if line.startswith("pkg/"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", default=str(ROOT / "fixtures" / "positive"))
    parser.add_argument("--line-length", type=int, default=100)
    parser.add_argument("--formatter", choices=("ruff", "black"), default="ruff")
    parser.add_argument("--format", action="store_true", help="format the copy before fixing it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        project = Path(temporary)
        shutil.copytree(args.folder, project / "pkg", ignore=shutil.ignore_patterns("__pycache__"))
        (project / "pyproject.toml").write_text(f"[tool.{args.formatter}]\nline-length = {args.line_length}\n")
        if args.format:
            command = (
                [tool("ruff"), "format", "--no-cache", "-q"] if args.formatter == "ruff" else [tool("black"), "-q"]
            )
            subprocess.run([*command, "pkg"], cwd=project, check=True)
        before = problems(project, args.line_length)
        fixed = subprocess.run(
            [sys.executable, "-m", "enslint", "check", "pkg", "--fix", "--unsafe-fixes", "--no-cache"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        after = problems(project, args.line_length)
        applied = next((line for line in fixed.stdout.splitlines() if line.startswith("Applied")), "no fix applied")
        print(
            f"{args.folder}: {args.formatter} line-length {args.line_length}: E501/E30x {before} before, {after} after"
        )
        print(f"  enslint: {applied.strip()}")
        if args.format:
            if args.formatter == "ruff":
                check = subprocess.run(
                    [tool("ruff"), "format", "--no-cache", "--check", "pkg"],
                    cwd=project,
                    capture_output=True,
                    text=True,
                )
            else:
                check = subprocess.run(
                    [tool("black"), "--check", "-q", "pkg"], cwd=project, capture_output=True, text=True
                )
            verdict = "changes nothing" if check.returncode == 0 else "would reformat:\n" + check.stdout + check.stderr
            print(f"  {args.formatter} after the fix: {verdict}")


if __name__ == "__main__":
    main()
