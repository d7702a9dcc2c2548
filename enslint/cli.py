"""The `enslint` command line. Each command imports what it needs when it runs, so that
`enslint --help` stays instant and `check` never imports torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class UsageFailure(click.ClickException):
    exit_code = EXIT_ERROR

    def show(self, file=None) -> None:
        click.echo(f"enslint: error: {self.format_message()}", err=True)


def _codes(values: tuple[str, ...]) -> tuple[str, ...] | None:
    if not values:
        return None
    return tuple(code.strip() for value in values for code in value.split(",") if code.strip())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="enslint", prog_name="enslint")
def main() -> None:
    """Find slow ensemble patterns in PyTorch nn.Module code and explain the fused form."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")
@click.option("--select", multiple=True, help="Rule codes or prefixes to enable (comma-separated; replaces the configured list).")
@click.option("--ignore", multiple=True, help="Rule codes or prefixes to disable (comma-separated; added to the configured list).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option("--statistics", is_flag=True, help="Print how many findings each rule has, instead of the findings.")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Read [tool.enslint] from this pyproject.toml instead of the nearest one.")
@click.option("--no-color", is_flag=True, help="Never colour the output (NO_COLOR is honoured too).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache (.enslint_cache beside the configuration).")
@click.option("--fix", "apply_fixes", is_flag=True, help="Apply the safe fixes to the files.")
@click.option("--unsafe-fixes", is_flag=True, help="Also offer (and with --fix, apply) fixes that change the parameter layout.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the fixes as a unified diff; write nothing.")
@click.option("--show-details", is_flag=True, help="Print each finding's long explanation (shapes, fused form, why no fix) below it.")
def check(paths, output_format, select, ignore, exit_zero, statistics, config_path, no_color, no_cache, apply_fixes, unsafe_fixes, show_diff, show_details) -> None:
    """Check PATHS (default: .) for slow ensemble patterns. Never imports or runs them.

    Exit status: 0 nothing found, 1 findings, 2 usage or configuration error.
    """
    from enslint.config import ConfigError, check_codes, load_config
    from enslint.discovery import DiscoveryError, discover
    from enslint.output import Style, statistics_lines, summary, text_lines, to_json
    from enslint.runner import make_jobs, run

    cwd = Path.cwd()
    try:
        config = load_config(cwd, config_path)
        cli_select, cli_ignore = _codes(select), _codes(ignore)
        if cli_select is not None:
            config.select = check_codes("--select", list(cli_select))
        if cli_ignore is not None:
            config.ignore = config.ignore + check_codes("--ignore", list(cli_ignore))
        files = discover(list(paths) or [Path(".")], config)
    except (ConfigError, DiscoveryError) as error:
        raise UsageFailure(str(error)) from None
    use_cache = not no_cache and not os.environ.get("ENSLINT_NO_CACHE")
    jobs = make_jobs(files, config, cwd, use_cache)
    color = sys.stdout.isatty() and not no_color and not os.environ.get("NO_COLOR")
    style = Style(color)
    if show_diff or apply_fixes:
        from enslint.runner import check_all

        jobs, _ = check_all(jobs)  # the project's names, for files only they bring in
    if show_diff:
        sys.exit(_show_diff(jobs, unsafe_fixes))
    failed_writes = 0
    if apply_fixes:
        diagnostics, fixed, failed_writes = _apply_fixes(jobs, unsafe_fixes)
    else:
        diagnostics, fixed = run(jobs), 0

    if output_format == "json":
        click.echo(to_json(diagnostics, unsafe_fixes))
    elif statistics:
        for line in statistics_lines(diagnostics, style):
            click.echo(line)
    else:
        for line in text_lines(diagnostics, style, unsafe_fixes, show_details):
            click.echo(line)
        if apply_fixes:
            click.echo(f"Applied {fixed} fix{'es' if fixed != 1 else ''}.")
        click.echo(summary(diagnostics, len(files), style, unsafe_fixes))
    if failed_writes:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if diagnostics and not exit_zero else EXIT_CLEAN)


def _show_diff(jobs, unsafe: bool) -> int:
    """Print what --fix would change; exit 1 when it would change something."""
    from enslint.engine.transaction import fix_file

    fixed = 0
    for job in jobs:
        outcome = fix_file(job, unsafe)
        if outcome.error:
            click.echo(f"enslint: {job.path}: {outcome.error}", err=True)
        elif outcome.changed:
            click.echo(outcome.diff(), nl=False)
            fixed += outcome.fixed
    click.echo(f"Would apply {fixed} fix{'es' if fixed != 1 else ''}." if fixed else "No fixes to apply.", err=True)
    return EXIT_FINDINGS if fixed else EXIT_CLEAN


def _apply_fixes(jobs, unsafe: bool):
    from enslint.engine.transaction import fix_file, write_atomically

    diagnostics, fixed, failures = [], 0, 0
    for job in jobs:
        outcome = fix_file(job, unsafe)
        if outcome.error:
            click.echo(f"enslint: {job.path}: {outcome.error}", err=True)
        elif outcome.changed:
            try:
                write_atomically(outcome)
                fixed += outcome.fixed
            except OSError as error:
                failures += 1
                click.echo(f"enslint: error: {job.path}: not written: {error}", err=True)
        if outcome.skipped:
            click.echo(f"enslint: {job.path}: {outcome.skipped} overlapping fix(es) left for another --fix run", err=True)
        diagnostics.extend(outcome.remaining)
    return sorted(diagnostics), fixed, failures


@main.command()
@click.argument("code")
def rule(code: str) -> None:
    """Print the page of rule CODE (for example ENS001)."""
    from enslint.rules import RULES_BY_CODE
    from enslint.rules.pages import render_page

    found = RULES_BY_CODE.get(code.upper())
    if found is None:
        raise UsageFailure(f"unknown rule '{code}' (known: {', '.join(RULES_BY_CODE)})")
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
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True, help="Where to run: cuda when available with auto.")
@click.option("--dtype", type=click.Choice(["float32", "float64", "bfloat16", "float16"]), default="float32", show_default=True)
@click.option("--batch", type=click.IntRange(min=1), help="Batch size: replaces the first dimension of every configured input shape.")
@click.option("--compile", "use_compile", is_flag=True, help="Also time the original and each rewrite under torch.compile (compile time reported apart).")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True, help="text: a table for the terminal; json and markdown: every figure.")
@click.option("--apply", "apply_fix", is_flag=True, help="Write each class's recommended rewrite to its file (as --fix would), where one is recommended.")
@click.option("--min-time", type=click.FloatRange(min=0.001), default=0.2, show_default=True, help="Seconds each timing runs for, at least (torch.utils.benchmark).")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), help="Read [tool.enslint] from this pyproject.toml instead of the nearest one.")
def verify(targets, device, dtype, batch, use_compile, output_format, min_time, config_path, apply_fix) -> None:
    """Prove each rewrite equivalent to the original and time both, with torch.

    TARGETS are paths (every class `enslint check` flags in them; default .),
    `path/to/file.py::ClassName` or `package.module:ClassName`. For each class the
    original and the rewrite that `--fix --unsafe-fixes` would write (held in memory,
    nothing is written) are built with the same weights, traced with torch.fx, compared
    (outputs, input gradients, every parameter's gradient) and timed. Where a class has
    several candidate rewrites (a fused form, the vmap form, the safe unbind fix), each
    is checked and timed, and the fastest equivalent one is recommended when it beats
    the loop beyond the spread of the measurements ("keep the loop" when none does).
    With --apply, the recommended rewrites are written through the same transactional
    engine as `check --fix`.

    This IMPORTS AND RUNS the code it is pointed at (only those files and what they
    import). Configure classes under [tool.enslint.verify."ClassName"] with
    `init = {...}` (constructor keywords; "=expr" for a Python expression),
    `inputs = [[batch, ...], ...]` and `method = "forward"`.

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
    import warnings

    warnings.filterwarnings("ignore", message="Failed to initialize NumPy")  # torch without numpy: harmless here
    try:
        import torch
    except ImportError:
        raise UsageFailure("verify needs torch: pip install 'enslint[verify]'") from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise UsageFailure("--device cuda: no CUDA device is available to torch here")

    from enslint.verify.command import Options, apply_recommended, exit_code, markdown_table, progress_printer, run, terminal_table
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
    options = Options(device, dtype, batch, use_compile, min_time)
    rows = run(found, config, options, progress_printer())
    if output_format == "json":
        import json

        click.echo(json.dumps([row.as_json() for row in rows], indent=2))
    elif output_format == "markdown":
        click.echo(markdown_table(rows, use_compile))
    else:
        click.echo(terminal_table(rows))
    if apply_fix:
        for line in apply_recommended(found, rows):
            click.echo(f"enslint: {line}", err=True)
    sys.exit(exit_code(rows))


def run_cli() -> None:
    """Entry point: no traceback reaches the user unless ENSLINT_DEBUG is set."""
    try:
        main(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("enslint: interrupted", err=True)
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        # The reader went away (`enslint check | head`): nothing left to say to it.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except Exception as error:  # noqa: BLE001
        if os.environ.get("ENSLINT_DEBUG"):
            raise
        click.echo(f"enslint: internal error: {type(error).__name__}: {error} (set ENSLINT_DEBUG=1 for details)", err=True)
        sys.exit(EXIT_ERROR)
