"""Run the checker over many files, in parallel when it pays, in a stable order."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from enslint.cache import CACHE_FOLDER, code_fingerprint
from enslint.checker import Diagnostic, FileJob, check_file
from enslint.config import Config
from enslint.discovery import matches
from enslint.rules import Settings

# Below this many files, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 24


def display_path(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def make_jobs(files: list[Path], config: Config, cwd: Path, use_cache: bool = True) -> list[FileJob]:
    settings = Settings(min_members=config.min_members)
    cache_dir = str(config.root / CACHE_FOLDER) if use_cache else None
    fingerprint = code_fingerprint() if use_cache else ""
    base_codes = config.enabled_codes()
    jobs = []
    for path in files:
        codes = base_codes
        extra = tuple(
            code
            for pattern, ignored in config.per_file_ignores.items()
            if matches((pattern,), path, config.root, every_part=True)
            for code in ignored
        )
        if extra:
            codes = config.enabled_codes(extra)
        jobs.append(FileJob(display_path(path, cwd), str(path), codes, settings, cache_dir, fingerprint))
    return jobs


def run(jobs: list[FileJob], workers: int | None = None) -> list[Diagnostic]:
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers > 1 and len(jobs) >= PARALLEL_THRESHOLD:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = pool.map(check_file, jobs, chunksize=max(1, len(jobs) // (workers * 8)))
            diagnostics = [d for result in results for d in result]
    else:
        diagnostics = [d for job in jobs for d in check_file(job)]
    return sorted(diagnostics)
