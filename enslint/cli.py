"""The `enslint` command line. Each command imports what it needs when it runs, so that
`enslint --help` stays instant and `check` never imports torch.

Why one module of this size: it is the command line, one function per command, each
with its options declared beside the code that reads them; what the commands do lives
in runner.py, engine/, output.py and verify/.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from enslint.config import Config
    from enslint.findings import Diagnostic
    from enslint.measurements import MeasuredChoice, MeasurementStore

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageFailure(click.ClickException):
    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:  # click's signature
        click.echo(f"enslint: error: {self.format_message()}", err=True)


def _codes(values: tuple[str, ...]) -> tuple[str, ...] | None:
    if not values:
        return None
    codes = tuple(code.strip() for value in values for code in value.split(",") if code.strip())
    return codes or ("",)  # `--select ""`: refused as an empty code, not read as "nothing"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="enslint", prog_name="enslint")
def main() -> None:
    """Find slow ensemble patterns in PyTorch nn.Module code and explain the fused form."""


ENS000_PAGE = """# ENS000 (unreadable-file)

## What it does
Reports a file enslint could not check: it cannot be read, decoded (its encoding
declaration or bytes are wrong) or parsed (a syntax error for the running Python, or
syntax nested too deeply), it is past what libcst's parser takes (an `and`/`or` chain of
more than 5,000 operands, on which libcst's parser crashes; a construct its grammar
rejects), or its checker process died (an internal error: please report it with the
file). Every other file is still checked.

## Why is this bad?
Nothing in that file was checked, so a slow ensemble in it would go unreported.

## Use instead
Fix the file, or exclude it (`extend-exclude` in `[tool.enslint]`). It is reported
unless ignored (`ignore = ["ENS000"]`); it has no fix.
"""

FORMATS = ["text", "concise", "json", "sarif", "github", "gitlab", "junit"]

# Every command reads the configuration the same way.
CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Read [tool.enslint] from this pyproject.toml instead of the nearest one.",
)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "--output-format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help=(
        "Output format: text for people, concise one line each, json, sarif (GitHub code scanning), "
        "github (workflow annotations), gitlab (code quality), junit."
    ),
)
@click.option(
    "--output-file",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the output to this file instead of standard output.",
)
@click.option(
    "--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; replaces the configured list)."
)
@click.option("--extend-select", multiple=True, help="Rule codes or prefixes to enable on top of the configured list.")
@click.option(
    "--ignore", multiple=True, help="Rule codes or prefixes to disable (comma-separated; added to the configured list)."
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option(
    "--statistics",
    is_flag=True,
    help="Print how many findings each rule has, instead of the findings (as JSON with --format json).",
)
@CONFIG_OPTION
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Neither read nor write the result cache (.enslint_cache beside the configuration).",
)
@click.option(
    "--fix",
    "apply_fixes",
    is_flag=True,
    help="Apply the safe fixes to the files (to standard input: print the fixed source).",
)
@click.option(
    "--unsafe-fixes", is_flag=True, help="Also offer (and with --fix, apply) fixes that change the parameter layout."
)
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option(
    "--apply-slower",
    is_flag=True,
    help="Offer and apply rewrites even where `enslint verify` measured them slower than the loop.",
)
@click.option(
    "--show-details",
    is_flag=True,
    help="Print each finding's long explanation (shapes, fused form, why no fix) below it.",
)
@click.option("--show-fixes", is_flag=True, help="With --fix: list what was fixed in each file, before what remains.")
@click.option("--quiet", "-q", is_flag=True, help="Print the findings only: no summary, no 'All checks passed'.")
@click.option(
    "--stdin-filename",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "The name of the file read from standard input (`-`): configuration, excludes and per-file-ignores apply to it."
    ),
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Take the members `enslint profile` saw identical in this run as proof (default: .enslint/profile.json "
        "at the project root, when it is there)."
    ),
)
def check(
    paths: tuple[Path, ...],
    output_format: str,
    output_file: Path | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    exit_zero: bool,
    statistics: bool,
    config_path: Path | None,
    no_color: bool,
    no_cache: bool,
    apply_fixes: bool,
    unsafe_fixes: bool,
    show_diff: bool,
    apply_slower: bool,
    show_details: bool,
    show_fixes: bool,
    quiet: bool,
    stdin_filename: Path | None,
    profile_path: Path | None,
) -> None:
    """Check PATHS (default: .) for slow ensemble patterns. Never imports or runs them.

    `-` reads one file from standard input (name it with --stdin-filename).

    Exit status: 0 nothing found, 1 findings, 2 usage or configuration error.
    """
    from enslint.analyser import Analyser

    from_stdin = list(paths) == [Path("-")]
    use_cache = not no_cache and not os.environ.get("ENSLINT_NO_CACHE")
    # Without the cache every file the prefilter lets through is analysed: the analyser
    # starts importing libcst now, beside the configuration and the file search.
    analyser = Analyser.started() if not use_cache and not from_stdin else None
    from enslint.runner import make_jobs, run

    cwd = Path.cwd()
    if Path("-") in paths and not from_stdin:
        raise UsageFailure("`-` (standard input) cannot be combined with other paths")
    if stdin_filename is not None and not from_stdin:
        raise UsageFailure("--stdin-filename names what `-` reads: pass `-` as the path")
    config, files = _config_and_files(cwd, config_path, select, extend_select, ignore, paths, from_stdin)
    _read_profile(config, profile_path)
    color = sys.stdout.isatty() and output_file is None and not no_color and not os.environ.get("NO_COLOR")
    if from_stdin:
        sys.exit(
            _check_stdin(
                config,
                cwd,
                stdin_filename,
                apply_fixes,
                unsafe_fixes,
                show_diff,
                output_format,
                output_file,
                color,
                show_details,
                exit_zero,
            )
        )
    if not files:
        click.echo("enslint: warning: no Python files found to check", err=True)
        sys.exit(EXIT_CLEAN)
    jobs = make_jobs(files, config, cwd, use_cache)
    measured = _measurements(config, use_cache)
    choose: MeasuredChoice | None = None
    if show_diff or apply_fixes:
        from enslint.runner import check_all

        jobs, _ = check_all(jobs, analyser=analyser)  # the project's names, for files only they bring in
        if measured is not None and not apply_slower:
            from enslint.measurements import MeasuredChoice, slower_forms

            choose = MeasuredChoice(unsafe_fixes, slower_forms(measured, [j.filename for j in jobs]))
    if show_diff:
        from enslint.engine.fixing import show_diff as diff_fixes

        fixed = diff_fixes(jobs, unsafe_fixes, lambda text: click.echo(text, nl=False), _notify, choose)
        click.echo(f"Would apply {fixed} fix{'es' if fixed != 1 else ''}." if fixed else "No fixes to apply.", err=True)
        sys.exit(EXIT_FINDINGS if fixed else EXIT_CLEAN)
    failed_writes = 0
    fixed_by_file: dict[str, dict[str, int]] = {}
    if apply_fixes:
        from enslint.engine.fixing import apply_fixes as fix_files

        fixing = fix_files(jobs, unsafe_fixes, _notify, choose)
        diagnostics, fixed_by_file, failed_writes = fixing.remaining, fixing.fixed_by_file, fixing.failed_writes
    else:
        with _progress(len(jobs), quiet or output_format != "text") as tick:
            diagnostics = run(jobs, progress=tick, analyser=analyser)
    from enslint.measurements import annotate

    diagnostics = annotate(diagnostics, measured, unsafe_fixes, apply_slower)
    report = _render(diagnostics, output_format, statistics, unsafe_fixes, color, show_details, [j.path for j in jobs])
    if output_format == "text" and statistics and not diagnostics and not quiet:
        from enslint.output import Style, summary

        report = summary(diagnostics, len(files), Style(color), unsafe_fixes)  # an empty table says nothing
    elif output_format == "text" and not statistics:
        extra = _after_findings(
            diagnostics, len(files), fixed_by_file, apply_fixes, show_fixes, quiet, color, unsafe_fixes
        )
        report = "\n".join(part for part in [report, *extra] if part)
    _emit(report, output_file)
    if failed_writes:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if diagnostics and not exit_zero else EXIT_CLEAN)


def _config_and_files(
    cwd: Path,
    config_path: Path | None,
    select: tuple[str, ...],
    extend_select: tuple[str, ...],
    ignore: tuple[str, ...],
    paths: tuple[Path, ...],
    from_stdin: bool,
) -> tuple[Config, list[Path]]:
    """The configuration with the command line's rule codes applied, and the files to
    check (none for standard input); a configuration or discovery error is a usage error."""
    from enslint.config import ConfigError, check_codes, load_config
    from enslint.discovery import DiscoveryError, discover

    try:
        config = load_config(cwd, config_path)
        cli_select, cli_ignore, cli_extend = _codes(select), _codes(ignore), _codes(extend_select)
        if cli_select is not None:
            config.select = check_codes("--select", list(cli_select))
        if cli_extend is not None:
            config.select = config.select + check_codes("--extend-select", list(cli_extend))
        if cli_ignore is not None:
            config.ignore = config.ignore + check_codes("--ignore", list(cli_ignore))
        warn = lambda message: click.echo(f"enslint: warning: {message}", err=True)  # noqa: E731
        files = [] if from_stdin else discover(list(paths) or [Path(".")], config, warn)
    except (ConfigError, DiscoveryError) as error:
        raise UsageFailure(str(error)) from None
    return config, files


def _read_profile(config: Config, path: Path | None, captures: bool = False) -> None:
    """The profiled run's proof into `config` (and, for verify, its captured
    constructions): from `path`, else from the project's .enslint/profile.json if any."""
    from enslint.profiles import ProfileError, default_path, read, shown_path

    if path is None:
        path = default_path(config.root)
        if not path.is_file():
            return
    try:
        profile = read(path)
    except ProfileError as error:
        raise UsageFailure(str(error)) from None
    shown = shown_path(path)
    config.runtime = profile.runtime_members(shown)
    if not captures:
        return
    from enslint.config import VerifySpec
    from enslint.verify.building import captured_name

    for capture in profile.captures:
        if capture.init is None and capture.init_pickle is None:
            continue  # its arguments could not be kept: verify asks for a table as before
        pickled = str(path.parent / "captures" / capture.init_pickle) if capture.init_pickle else None
        inputs = tuple(tuple(shape) for shape in capture.inputs) if capture.inputs else None
        told = f"built as `enslint profile` captured it ({shown}, run of {' '.join(profile.program)})"
        config.verify[captured_name(Path(capture.path), capture.cls)] = VerifySpec(
            capture.init, inputs, capture.method, captured=told, init_pickle=pickled
        )


def _after_findings(
    diagnostics: list[Diagnostic],
    file_count: int,
    fixed_by_file: dict[str, dict[str, int]],
    apply_fixes: bool,
    show_fixes: bool,
    quiet: bool,
    color: bool,
    unsafe: bool,
) -> list[str]:
    """What the text format prints after the findings: what --fix --show-fixes fixed in
    each file, then (unless --quiet) how many fixes --fix applied, and the summary."""
    extra = []
    if apply_fixes and show_fixes:
        extra += _fixed_lines(fixed_by_file)
    if not quiet:
        from enslint.output import Style, summary

        fixed = sum(sum(codes.values()) for codes in fixed_by_file.values())
        if apply_fixes and (fixed or not show_fixes):  # --show-fixes has said "No errors fixed."
            extra.append(f"Applied {fixed} fix{'es' if fixed != 1 else ''}.")
        extra.append(summary(diagnostics, file_count, Style(color), unsafe))
    return extra


def _measurements(config: Config, use_cache: bool) -> MeasurementStore | None:
    """What `enslint verify` measured in this project (kept with the result cache)."""
    if not use_cache:
        return None
    from enslint.cache import CACHE_FOLDER
    from enslint.measurements import MeasurementStore

    return MeasurementStore(config.root / CACHE_FOLDER)


def _render(
    diagnostics: list[Diagnostic],
    output_format: str,
    statistics: bool,
    unsafe: bool,
    color: bool,
    details: bool,
    files: list[str],
) -> str:
    from enslint import output

    if statistics:
        if output_format == "json":
            return output.statistics_json(diagnostics, unsafe)
        return "\n".join(output.statistics_lines(diagnostics, output.Style(color)))
    if output_format == "json":
        return output.to_json(diagnostics, unsafe)
    if output_format == "sarif":
        from importlib.metadata import PackageNotFoundError, version

        try:
            own = version("enslint")
        except PackageNotFoundError:
            own = "0"
        return output.to_sarif(diagnostics, own)
    if output_format == "github":
        return "\n".join(output.github_lines(diagnostics))
    if output_format == "gitlab":
        return output.to_gitlab(diagnostics)
    if output_format == "junit":
        return output.to_junit(diagnostics, files)
    if output_format == "concise":
        return "\n".join(output.concise_lines(diagnostics, unsafe))
    return "\n".join(output.text_lines(diagnostics, output.Style(color), unsafe, details))


def _notify(line: str) -> None:
    click.echo(line, err=True)


def _emit(report: str, output_file: Path | None) -> None:
    """To standard output, or written whole to `output_file` (never half-written)."""
    if output_file is None:
        if report:
            click.echo(report)
        return
    temporary = output_file.with_name(f".{output_file.name}.enslint-tmp")
    try:
        temporary.write_text(report + ("\n" if report else ""), encoding="utf-8")
        os.replace(temporary, output_file)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UsageFailure(f"--output-file {output_file}: {error.strerror or error}") from None


def _fixed_lines(fixed_by_file: dict[str, dict[str, int]]) -> list[str]:
    from enslint.rules import RULES_BY_CODE

    total = sum(sum(codes.values()) for codes in fixed_by_file.values())
    if not total:
        return ["No errors fixed."]
    lines = [f"Fixed {total} error{'s' if total != 1 else ''}:"]
    for path, codes in fixed_by_file.items():
        lines.append(f"- {path}:")
        lines += [
            f"    {n} x {code} ({RULES_BY_CODE[code].name if code in RULES_BY_CODE else ''})"
            for code, n in codes.items()
        ]
    return lines


class _progress:
    """A progress bar on standard error for long runs on a terminal: files checked out of
    the total. Silent in pipes, in CI and for short runs."""

    THRESHOLD = 200  # files; a smaller run finishes before a bar helps

    def __init__(self, total: int, silent: bool) -> None:
        self.show = not silent and total >= self.THRESHOLD and sys.stderr.isatty() and not os.environ.get("CI")
        self.total = total

    def __enter__(self) -> Callable[[int], None] | None:
        if not self.show:
            return None
        self.bar = click.progressbar(length=self.total, label="checking", file=sys.stderr, show_pos=True)
        self.bar.__enter__()
        return lambda done: self.bar.update(done)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.show:
            self.bar.__exit__(kind, error, traceback)


def _check_stdin(
    config: Config,
    cwd: Path,
    filename: Path | None,
    apply_fixes: bool,
    unsafe: bool,
    show_diff: bool,
    output_format: str,
    output_file: Path | None,
    color: bool,
    details: bool,
    exit_zero: bool,
) -> int:
    """One buffer from standard input, checked as the file `filename` would be: its
    config, excludes and per-file-ignores. With --fix the fixed source is printed."""
    from enslint.checking import check_bytes
    from enslint.discovery import matches
    from enslint.engine.transaction import fix_file
    from enslint.runner import make_jobs

    data = sys.stdin.buffer.read()
    path = (cwd / filename) if filename is not None else cwd / "-"
    if filename is not None and matches(config.exclude + config.extend_exclude, path, config.root, every_part=True):
        if apply_fixes:
            sys.stdout.buffer.write(data)  # excluded: passed through unchanged
        return EXIT_CLEAN
    (job,) = make_jobs([path], config, cwd, use_cache=False)
    if filename is None:
        job = replace(job, path="-")
    if apply_fixes or show_diff:
        outcome = fix_file(job, unsafe, data=data)
        if outcome.error:
            click.echo(f"enslint: {job.path}: {outcome.error}", err=True)
        if show_diff:
            if outcome.changed:
                click.echo(outcome.diff(), nl=False)
            return EXIT_FINDINGS if outcome.changed else EXIT_CLEAN
        if outcome.changed:
            from enslint.source import detect_encoding

            sys.stdout.buffer.write(outcome.after.encode(detect_encoding(data)))  # the input's own encoding
        else:
            sys.stdout.buffer.write(data)
        remaining = outcome.remaining
        for d in remaining:
            click.echo(f"{d.path}:{d.row}:{d.column}: {d.code} {d.message}", err=True)
        return EXIT_FINDINGS if remaining and not exit_zero else EXIT_CLEAN
    diagnostics = check_bytes(job, data)
    _emit(_render(diagnostics, output_format, False, unsafe, color, details, [job.path]), output_file)
    return EXIT_FINDINGS if diagnostics and not exit_zero else EXIT_CLEAN


@main.command()
@click.argument("code")
def rule(code: str) -> None:
    """Print the page of rule CODE (for example ENS001)."""
    from enslint.rules import RULES_BY_CODE
    from enslint.rules.pages import render_page

    if code.upper() == "ENS000":
        click.echo(ENS000_PAGE, nl=False)
        return
    found = RULES_BY_CODE.get(code.upper())
    if found is None:
        raise UsageFailure(f"unknown rule '{code}' (known: ENS000, {', '.join(RULES_BY_CODE)})")
    click.echo(render_page(found), nl=False)


@main.command()
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules(output_format: str) -> None:
    """List every rule: code, name, summary."""
    import json

    from enslint.rules import ALL_RULES

    if output_format == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "summary": r.summary} for r in ALL_RULES], indent=2))
        return
    for r in ALL_RULES:
        click.echo(f"{r.code}  {r.name:<22}  {r.summary}")


@main.command()
@click.argument("targets", nargs=-1)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where to run: cuda when available with auto.",
)
@click.option(
    "--dtype", type=click.Choice(["float32", "float64", "bfloat16", "float16"]), default="float32", show_default=True
)
@click.option(
    "--batch", help="Batch size, or sizes to sweep (32,256,1024): replaces the first dimension of every input shape."
)
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Draw, per class, the original's and each rewrite's training-step time across the batch sizes to this "
        "image (needs matplotlib)."
    ),
)
@click.option(
    "--compile",
    "use_compile",
    is_flag=True,
    help="Also time the original and each rewrite under torch.compile (compile time reported apart).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="text: a table for the terminal; json and markdown: every figure.",
)
@click.option(
    "--apply",
    "apply_fix",
    is_flag=True,
    help="Write each class's recommended rewrite to its file (as --fix would), where one is recommended.",
)
@click.option(
    "--min-time",
    type=click.FloatRange(min=0.001),
    default=0.2,
    show_default=True,
    help="Seconds each timing runs for, at least (torch.utils.benchmark).",
)
@click.option(
    "--timeout",
    "time_limit",
    type=click.FloatRange(min=0.1),
    default=600.0,
    show_default=True,
    help="Seconds each class may take (its import included) before it is stopped and reported as an error.",
)
@click.option(
    "--definitions-only",
    "only_definitions",
    is_flag=True,
    help=(
        "Load only each file's imports, definitions and constant assignments: for a script that reads its "
        "data or parses its arguments when imported."
    ),
)
@CONFIG_OPTION
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Build classes that have no table as this `enslint profile` run built them, and take its proof "
        "(default: .enslint/profile.json at the project root, when it is there)."
    ),
)
def verify(
    targets: tuple[str, ...],
    device: str,
    dtype: str,
    batch: str | None,
    plot: Path | None,
    use_compile: bool,
    output_format: str,
    min_time: float,
    time_limit: float,
    config_path: Path | None,
    apply_fix: bool,
    profile_path: Path | None,
    only_definitions: bool,
) -> None:
    """Prove each rewrite equivalent to the original and time both, with torch.

    TARGETS are paths (every class `enslint check` flags in them; default .),
    `path/to/file.py::ClassName` or `package.module:ClassName`. For each class the
    original and the rewrite that `--fix --unsafe-fixes` would write (held in memory,
    nothing of yours is written; the timings are kept in .enslint_cache for `check` to
    show and `--fix` to heed) are built with the same weights, traced with torch.fx, compared
    (outputs, input gradients, every parameter's gradient) and timed. Where a class has
    several candidate rewrites (a fused form, the vmap form, the safe unbind fix), each
    is checked and timed, and the fastest equivalent one is recommended when it beats
    the loop beyond the spread of the measurements ("keep the loop" when none does).
    With --apply, the recommended rewrites are written through the same transactional
    engine as `check --fix`.

    This IMPORTS AND RUNS the code it is pointed at (only those files and what they
    import). Configure classes under [tool.enslint.verify."ClassName"] with
    `init = {...}` (constructor keywords; "=expr" for a Python expression),
    `inputs = [[batch, ...], ...]` and `method = "forward"`. The classes run in a worker
    process, replaced when one dies, each stopped after --timeout seconds; what their
    code prints goes to standard error, so standard output holds the report alone.
    A file's imports resolve from its project's root (and `src/`) as check resolves
    them; a file whose module-level code fails is named with the failing line, and
    --definitions-only then loads only its definitions.

    Exit status: 0 every class equivalent, 1 a mismatch or a class that failed,
    2 usage or configuration error (CUDA asked for but absent; a class needing config).
    """
    from enslint.config import ConfigError, load_config
    from enslint.discovery import DiscoveryError

    cwd = Path.cwd()
    try:
        config = load_config(cwd, config_path)
    except ConfigError as error:
        raise UsageFailure(str(error)) from None
    _read_profile(config, profile_path, captures=True)

    try:
        batches: list[int | None] = [int(b) for b in batch.split(",")] if batch else [None]
    except ValueError:
        raise UsageFailure(f"--batch {batch}: a size or comma-separated sizes, like 32,256,1024") from None
    if any(b is not None and b < 1 for b in batches):
        raise UsageFailure(f"--batch {batch}: sizes must be at least 1")
    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageFailure("--plot needs matplotlib: pip install 'enslint[verify]'") from None
    # What to verify is check's to say, without torch: a tree with nothing flagged is
    # told so at check's speed, not after torch's import.
    from enslint.verify.targets import TargetError, collect

    skipped: list[str] = []
    try:
        found = collect(list(targets), config, cwd, skipped)
    except (TargetError, DiscoveryError, OSError, SyntaxError, UnicodeDecodeError) as error:
        raise UsageFailure(str(error).splitlines()[0]) from None
    for line in skipped:
        click.echo(f"enslint: {line}", err=True)
    if not found:
        click.echo("No flagged classes to verify.", err=True)
        sys.exit(EXIT_CLEAN)
    device = _torch_device(device)
    from enslint.verify.command import (
        Options,
        apply_recommended,
        exit_code,
        markdown_table,
        progress_printer,
        sweep,
        terminal_table,
    )

    options = Options(device, dtype, None, use_compile, min_time, time_limit, only_definitions)
    rows = sweep(found, config, options, batches, progress_printer())
    if output_format == "json":
        import json

        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    elif output_format == "markdown":
        click.echo(markdown_table(rows, use_compile))
    else:
        click.echo(terminal_table(rows))
    if not os.environ.get("ENSLINT_NO_CACHE"):
        from enslint.cache import CACHE_FOLDER
        from enslint.verify.measured import record

        record(config.root / CACHE_FOLDER, found, rows)  # for `check` to tell and `--fix` to heed
    if plot is not None:
        from enslint.verify.plotting import plot_sweep

        plot_sweep(rows, plot)
        click.echo(f"enslint: wrote {plot}", err=True)
    if apply_fix:
        for line in apply_recommended(found, rows):
            click.echo(f"enslint: {line}", err=True)
    sys.exit(exit_code(rows))


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("-m", "module", metavar="MODULE", help="Run a module as `python -m MODULE ARGS` would.")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0.001),
    help="Stop the program after this many seconds and keep what was gathered.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--output-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the profile (default: .enslint/profile.json at the project root).",
)
@CONFIG_OPTION
@click.argument("program", nargs=-1, type=click.UNPROCESSED)
def profile(
    module: str | None,
    max_seconds: float | None,
    output_format: str,
    output_file: Path | None,
    config_path: Path | None,
    program: tuple[str, ...],
) -> None:
    """Run SCRIPT [ARGS]... (or -m MODULE [ARGS]...) and find the loops over identical
    sibling modules it runs, with their share of the run's time, forward and backward.

    The program runs in this process, under PyTorch's module hooks, as `python SCRIPT`
    would run it; what it computes is unchanged, its output and exit status pass through.
    The profile (groups found, and how each flagged class was built and first called) is
    written to .enslint/profile.json at the project root, where `check` takes it as
    proof and `verify` builds classes that have no table from it. The report follows the
    program's own output on standard output (with --format json, as its last line).

    Exit status: the program's (0 when --max-seconds stopped it), 2 usage error.
    """
    from enslint.config import ConfigError, load_config

    if module is None and not program:
        raise UsageFailure("name the program: enslint profile SCRIPT [ARGS]... or -m MODULE [ARGS]...")
    target, args = (module, list(program)) if module is not None else (program[0], list(program[1:]))
    if module is None and not Path(target).is_file():
        raise UsageFailure(f"{target}: no such script")
    start = Path(target).resolve().parent if module is None else Path.cwd()
    try:
        config = load_config(start, config_path)
    except ConfigError as error:
        raise UsageFailure(str(error)) from None
    _torch_device("cpu", "profile")  # torch, or a one-line error
    from enslint.profiling.command import profile_program
    from enslint.profiling.report import as_json, as_text

    # The program's Ctrl-C is its own (a KeyboardInterrupt where it runs), as under python.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        outcome = profile_program(target, args, module is not None, max_seconds, config, output_file)
    finally:
        signal.signal(signal.SIGINT, _interrupt)
    report = as_json(outcome) if output_format == "json" else as_text(outcome)
    click.echo(report)
    sys.exit(outcome.ending.status)


def _torch_device(device: str, command: str = "verify") -> str:
    """The device verify runs on, once torch is imported; a usage error without torch."""
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch without numpy: harmless here
    try:
        import torch
    except ImportError:
        raise UsageFailure(f"{command} needs torch: pip install 'enslint[verify]'") from None
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageFailure("--device cuda: no CUDA device is available to torch here")
    return device


class Interrupted(BaseException):
    """SIGINT or SIGTERM: raised in the main process where click does not catch it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _stop(signum: int) -> None:
    """Kill the workers, say what was rewritten, exit 128 + the signal's number."""
    from enslint.engine.replacing import WRITTEN
    from enslint.workers import kill_all

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    kill_all()
    name = signal.Signals(signum).name
    if WRITTEN:
        listed = ", ".join(WRITTEN)
        click.echo(f"enslint: interrupted ({name}); rewritten before it stopped: {listed}", err=True)
    else:
        click.echo(f"enslint: interrupted ({name}); no file was rewritten", err=True)
    sys.exit(128 + signum)


def run_cli() -> None:
    """Entry point: no traceback reaches the user unless ENSLINT_DEBUG is set. Ctrl-C
    and SIGTERM stop the workers and exit with 130 and 143, naming the files rewritten."""
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        main(standalone_mode=True)
    except (Interrupted, KeyboardInterrupt) as stop:
        _stop(stop.signum if isinstance(stop, Interrupted) else signal.SIGINT)
    except BrokenPipeError:
        # The reader went away (`enslint check | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except Exception as error:  # noqa: BLE001
        if os.environ.get("ENSLINT_DEBUG"):
            raise
        click.echo(
            f"enslint: internal error: {type(error).__name__}: {error} (set ENSLINT_DEBUG=1 for details)", err=True
        )
        sys.exit(EXIT_ERROR)
