"""`[tool.enslint]` in the nearest pyproject.toml, validated into `Config`.

Every problem is a `ConfigError` with one line that names the key; the CLI prints it and
exits 2.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from enslint.analysis.runtime import RuntimeMembers
from enslint.rules import RULES_BY_CODE

KNOWN_CODES = ("ENS000", *RULES_BY_CODE)
DEFAULT_EXCLUDE = (
    ".*",  # hidden folders: .git, .venv, .tox, ...
    "__pycache__",
    "__pypackages__",
    "node_modules",
    # Virtualenvs are found by their pyvenv.cfg (and conda's by conda-meta), not by
    # name: a package called `env` is source like any other.
    "site-packages",
    "build",
    "dist",
    "_build",
    "buck-out",
)


class ConfigError(Exception):
    """A one-line, user-facing configuration problem."""


@dataclass(frozen=True)
class VerifySpec:
    """[tool.enslint.verify."Name"]: constructor keywords, one shape per positional
    input (batch first), and the method to call."""

    init: dict | None = None
    inputs: tuple[tuple[int, ...], ...] | None = None
    method: str | None = None
    # Set for a construction `enslint profile` captured (never from pyproject.toml): where
    # it came from, as told to the user; `init` then holds values, not "=expr" strings,
    # or `init_pickle` names the file that holds them.
    captured: str | None = None
    init_pickle: str | None = None


_VERIFY_KEYS = ("init", "inputs", "method")


def _verify_spec(name: str, table: object) -> VerifySpec:
    where = f"'verify.\"{name}\"'"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table with keys {', '.join(_VERIFY_KEYS)}")
    unknown = sorted(set(table) - set(_VERIFY_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key '{unknown[0]}'{_did_you_mean(unknown[0], list(_VERIFY_KEYS))} "
            f"(known keys: {', '.join(_VERIFY_KEYS)})"
        )
    init, inputs, method = table.get("init"), table.get("inputs"), table.get("method")
    if init is not None and not isinstance(init, dict):
        raise ConfigError(f"{where}: 'init' must be a table of constructor keyword arguments")
    if inputs is not None:
        if not isinstance(inputs, list) or not all(
            isinstance(shape, list)
            and shape
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
            for shape in inputs
        ):
            raise ConfigError(f"{where}: 'inputs' must be a list of shapes, e.g. [[256, 10, 17]]")
        inputs = tuple(tuple(shape) for shape in inputs)
    if method is not None and (not isinstance(method, str) or not method.isidentifier()):
        raise ConfigError(f"{where}: 'method' must be a method name")
    return VerifySpec(init, inputs, method)


@dataclass
class Config:
    root: Path  # the folder the globs are relative to
    source: Path | None = None  # the pyproject.toml read, if any
    select: tuple[str, ...] = ("ENS",)
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    min_members: int = 2
    # `enslint verify`: how to build each class, by class name or full target name.
    verify: dict[str, VerifySpec] = field(default_factory=dict)
    # Collections a profiled run saw identical (`--profile`): set by the command line.
    runtime: tuple[RuntimeMembers, ...] = ()

    def verify_table(self, names: list[str]) -> tuple[str, VerifySpec] | None:
        """The first of a class's names (table_names) that has a verify table."""
        return next(((name, self.verify[name]) for name in names if name in self.verify), None)

    def enabled_codes(self, extra_ignores: tuple[str, ...] = ()) -> frozenset[str]:
        """Codes selected by prefix and not ignored. ENS000 (unreadable file) is always
        reported unless ignored explicitly."""
        ignored = self.ignore + extra_ignores
        enabled = set()
        for code in KNOWN_CODES:
            selected = code == "ENS000" or any(_matches(code, s) for s in self.select)
            if selected and not any(_matches(code, i) for i in ignored):
                enabled.add(code)
        return frozenset(enabled)


def table_names(path: str, class_name: str) -> list[str]:
    """The names a class's `[tool.enslint.verify.*]` table may be given under, by the
    class's file (as given, relative or absolute), most specific first."""
    return [f"{path}::{class_name}", class_name]


def _matches(code: str, prefix: str) -> bool:
    return prefix == "ALL" or code.startswith(prefix.upper())


def check_codes(key: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"'{key}' must be a list of rule codes or prefixes, like [\"ENS001\"]")
    for value in values:
        if not value.strip():
            raise ConfigError(f'\'{key}\': an empty rule code selects nothing (a code or prefix: "ENS001", "ENS")')
        if value != "ALL" and not any(code.startswith(value.upper()) for code in KNOWN_CODES):
            raise ConfigError(f"'{key}': unknown rule code or prefix '{value}' (known: {', '.join(KNOWN_CODES)})")
    return tuple(v.upper() if v != "ALL" else v for v in values)


def _strings(key: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str):  # one pattern, as `ignore = "ENS002"` is one code
        values = [values]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"'{key}' must be a list of strings (glob patterns), like [\"build\"]")
    return tuple(values)


def _did_you_mean(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _line(path: Path, number: int) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return ""
    return lines[number - 1] if 0 < number <= len(lines) else ""


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    except tomllib.TOMLDecodeError as error:
        at = re.search(r"at line (\d+)", str(error))  # TOMLDecodeError.lineno is 3.14's
        hint = ""
        if at and re.search(r"=\s*\.\.\.|\.\.\.\s*\]", _line(path, int(at.group(1)))):
            hint = ": replace the ... that enslint verify left for you to fill in"
        raise ConfigError(f"{path}: invalid TOML: {error}{hint}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def _enslint_table(data: dict, path: Path) -> object:
    """`tool.enslint` of parsed TOML (however it is spelt: `[tool.enslint]`,
    `[tool."enslint"]`, `[tool] enslint = {...}`), or None when there is none."""
    tool = data.get("tool")
    if tool is None:
        return None
    if not isinstance(tool, dict):
        raise ConfigError(f"{path}: 'tool' must be a table of tools' settings, not {type(tool).__name__} {tool!r}")
    return tool.get("enslint")


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` whose TOML has a `tool.enslint`
    table (read as TOML, not searched as text); failing that, None. A pyproject.toml that
    is not valid TOML is an error when it mentions enslint, and passed over otherwise."""
    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            data = _read_toml(candidate)
        except ConfigError:
            try:
                mentions = "enslint" in candidate.read_text(encoding="utf-8", errors="replace")
            except OSError:
                mentions = False
            if mentions:
                raise
            continue
        if _enslint_table(data, candidate) is not None:
            return candidate
    return None


def load_config(start: Path, explicit: Path | None = None) -> Config:
    path = explicit if explicit is not None else find_pyproject(start)
    if path is None:
        return Config(root=start)
    table = _enslint_table(_read_toml(path), path)
    if table is None:
        raise ConfigError(f"{path}: no [tool.enslint] table (--config names the pyproject.toml that has one)")
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.enslint] must be a table, not {type(table).__name__} {table!r}")
    try:
        return _parse(table, path)
    except ConfigError as error:
        raise ConfigError(f"{path}: [tool.enslint] {error}") from None


def _parse(table: dict, path: Path) -> Config:
    config = Config(root=path.parent, source=path)
    for key, value in table.items():
        if key == "select":
            config.select = check_codes(key, value)
        elif key == "extend-select":
            config.select = config.select + check_codes(key, value)
        elif key == "ignore":
            config.ignore = check_codes(key, value)
        elif key == "exclude":
            config.exclude = _strings(key, value)
        elif key == "extend-exclude":
            config.extend_exclude = _strings(key, value)
        elif key == "per-file-ignores":
            if not isinstance(value, dict):
                raise ConfigError("'per-file-ignores' must be a table of glob = [codes]")
            config.per_file_ignores = {
                str(glob): check_codes(f"per-file-ignores.{glob}", codes) for glob, codes in value.items()
            }
        elif key == "min-members":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"'min-members' must be a whole number of at least 1, not {value!r}")
            config.min_members = value
        elif key == "verify":
            if not isinstance(value, dict):
                raise ConfigError("'verify' must be a table of [tool.enslint.verify.\"ClassName\"] tables")
            config.verify = {str(name): _verify_spec(str(name), spec) for name, spec in value.items()}
        else:
            known = [
                "select",
                "extend-select",
                "ignore",
                "exclude",
                "extend-exclude",
                "per-file-ignores",
                "min-members",
                "verify",
            ]
            raise ConfigError(f"unknown key '{key}'{_did_you_mean(str(key), known)} (known keys: {', '.join(known)})")
    return config
