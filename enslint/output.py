"""Render diagnostics: ruff-style text lines, JSON, statistics, and the formats CI and code
review read (SARIF, GitHub annotations, GitLab code quality, JUnit)."""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections import Counter
from pathlib import Path, PurePosixPath, PureWindowsPath
from urllib.parse import quote

from enslint.findings import Diagnostic

RULES_URL = "https://github.com/enslint/enslint/blob/main/rules/{code}.md"


class Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def _wrap(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def bold(self, text: str) -> str:
        return self._wrap(text, "1")

    def red(self, text: str) -> str:
        return self._wrap(text, "1;31")

    def dim(self, text: str) -> str:
        return self._wrap(text, "2")

    def green(self, text: str) -> str:
        return self._wrap(text, "1;32")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def shown_path(path: str) -> str:
    """A path on one line: control characters (a newline in a file name) escaped as
    Python writes them (`\\n`), so that one finding stays one line."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], path)


def fixable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix_for(unsafe) is not None


def text_lines(diagnostics: list[Diagnostic], style: Style, unsafe: bool = False, details: bool = False) -> list[str]:
    """One line per finding; with `details`, its long explanation below it, wrapped at
    word boundaries and indented (the fix on offer last)."""
    colon = style.dim(":")
    lines = []
    for d in diagnostics:
        lines.append(
            f"{style.bold(shown_path(d.path))}{colon}{d.row}{colon}{d.column}{colon} {style.red(d.code)} "
            f"{style.bold('[*] ') if fixable(d, unsafe) else ''}{d.message}"
        )
        if details and d.details:
            for paragraph in d.details.split("\n"):
                lines += textwrap.wrap(
                    paragraph,
                    100,
                    initial_indent="    ",
                    subsequent_indent="    ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            fix = d.fix_for(unsafe) or (d.fixes[0] if d.fixes else None)
            if fix is not None:
                wrapped = textwrap.wrap(
                    f"{fix.applicability} fix: {fix.message}",
                    100,
                    initial_indent="    ",
                    subsequent_indent="    ",
                    break_long_words=False,
                )
                lines += [style.dim(line) for line in wrapped]
    return lines


def _plural(n: int, word: str) -> str:
    suffix = "es" if word.endswith("x") else "s"
    return f"{n} {word}{suffix if n != 1 else ''}"


def summary(diagnostics: list[Diagnostic], files: int, style: Style, unsafe: bool = False) -> str:
    if not diagnostics:
        return style.green("All checks passed!") + f" ({_plural(files, 'file')} checked)"
    text = f"Found {_plural(len(diagnostics), 'error')} in {_plural(files, 'file')} checked."
    ready = sum(fixable(d, unsafe) for d in diagnostics)
    hidden = sum(bool(d.fixes) and not fixable(d, unsafe) for d in diagnostics)
    if ready:
        text += f"\n[*] {ready} fixable with the `--fix` option"
        if hidden:
            text += f" ({_plural(hidden, 'hidden fix')} can be enabled with the `--unsafe-fixes` option)"
        text += "."
    elif hidden:
        text += (
            f"\nNo fixes available ({_plural(hidden, 'hidden fix')} can be enabled with the `--unsafe-fixes` option)."
        )
    return text


def statistics_lines(diagnostics: list[Diagnostic], style: Style) -> list[str]:
    counts = Counter((d.code, d.name) for d in diagnostics)
    width = max((len(str(c)) for c in counts.values()), default=1)
    return [
        f"{count:>{width}}\t{style.red(code)}\t{name}"
        for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def to_json(diagnostics: list[Diagnostic], unsafe: bool = False) -> str:
    """ruff's shape: `fix` is the one `--fix` applies in this mode, else the first on
    offer (with its applicability, as ruff shows unsafe fixes)."""
    items = [
        {
            "code": d.code,
            "name": d.name,
            "message": d.message,
            "details": d.details,
            "no_fix": d.no_fix or None,
            "filename": d.filename,
            "location": {"row": d.row, "column": d.column},
            "end_location": {"row": d.end_row, "column": d.end_column},
            "noqa_row": d.row,
            "fix": _shown_fix(d, unsafe),
            "url": RULES_URL.format(code=d.code) if d.code != "ENS000" else None,
        }
        for d in diagnostics
    ]
    return json.dumps(items, indent=2)


def _shown_fix(d: Diagnostic, unsafe: bool) -> dict | None:
    fix = d.fix_for(unsafe) or (d.fixes[0] if d.fixes else None)
    return fix.as_json() if fix else None


# -- formats for CI and code review -------------------------------------------------------
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _artifact_location(d: Diagnostic) -> dict:
    """The finding's file as an RFC 3986 URI: a relative reference against %SRCROOT% with
    every character outside the unreserved set and `/` percent-encoded (a space, `%`,
    `#`, `?`, a colon that would read as a scheme, UTF-8 bytes of other scripts), or a
    `file:` URI for a path outside the working directory's tree."""
    path = d.path.replace("\\", "/")
    if PurePosixPath(path).is_absolute() or PureWindowsPath(d.path).is_absolute():
        return {"uri": Path(d.path).absolute().as_uri()}
    return {"uri": quote(path, safe="/"), "uriBaseId": "%SRCROOT%"}


def to_sarif(diagnostics: list[Diagnostic], version: str) -> str:
    """SARIF 2.1.0, as GitHub code scanning reads it: one run, the rules with their pages
    as tool metadata, one result per finding with its physical location and region."""
    from enslint.rules import ALL_RULES

    rules = [
        {
            "id": rule.code,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "fullDescription": {"text": " ".join(rule.what_it_does.split())},
            "help": {"text": " ".join(rule.why_bad.split()), "markdown": rule.why_bad},
            "helpUri": RULES_URL.format(code=rule.code),
            "defaultConfiguration": {"level": "warning"},
        }
        for rule in ALL_RULES
    ] + [
        {
            "id": "ENS000",
            "name": "unreadable-file",
            "shortDescription": {"text": "A file that cannot be read, decoded or parsed"},
            "defaultConfiguration": {"level": "error"},
        }
    ]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = []
    for d in diagnostics:
        region = {"startLine": d.row, "startColumn": d.column}
        if d.end_row:
            region.update(endLine=d.end_row, endColumn=max(d.end_column, 1))
        result = {
            "ruleId": d.code,
            "ruleIndex": index.get(d.code, 0),
            "level": "error" if d.code == "ENS000" else "warning",
            "message": {"text": d.message + (f"\n\n{d.details}" if d.details else "")},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _artifact_location(d),
                        "region": region,
                    }
                }
            ],
        }
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "enslint",
                        "version": version,
                        "informationUri": "https://github.com/enslint/enslint",
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)


def _github_escape(text: str, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def github_lines(diagnostics: list[Diagnostic]) -> list[str]:
    """GitHub Actions workflow commands: an annotation on the line of each finding."""
    return [
        f"::{'error' if d.code == 'ENS000' else 'warning'} "
        f"title={_github_escape(f'enslint ({d.code})', True)},file={_github_escape(d.path, True)},"
        f"line={d.row},col={d.column},endLine={d.end_row or d.row},endColumn={d.end_column or d.column}"
        f"::{_github_escape(f'{d.code} {d.message}')}"
        for d in diagnostics
    ]


def to_gitlab(diagnostics: list[Diagnostic]) -> str:
    """GitLab code quality report: each finding with a stable fingerprint (path, code,
    message and which occurrence of them it is, not its line: moving code keeps it)."""
    seen: Counter = Counter()
    items = []
    for d in diagnostics:
        key = (d.path, d.code, d.message)
        seen[key] += 1
        fingerprint = hashlib.sha256("\0".join([*key, str(seen[key])]).encode()).hexdigest()
        items.append(
            {
                "description": f"{d.code}: {d.message}",
                "check_name": d.code,
                "fingerprint": fingerprint,
                "severity": "critical" if d.code == "ENS000" else "major",
                "location": {"path": d.path, "lines": {"begin": d.row, "end": d.end_row or d.row}},
            }
        )
    return json.dumps(items, indent=2)


def to_junit(diagnostics: list[Diagnostic], files: list[str]) -> str:
    """JUnit XML: a test suite per file checked, a failing test case per finding."""
    import xml.etree.ElementTree as ET

    by_file: dict[str, list[Diagnostic]] = {path: [] for path in files}
    for d in diagnostics:
        by_file.setdefault(d.path, []).append(d)
    root = ET.Element(
        "testsuites",
        name="enslint",
        tests=str(max(len(diagnostics), len(by_file))),
        failures=str(len(diagnostics)),
        errors="0",
    )
    for path, found in by_file.items():
        suite = ET.SubElement(
            root, "testsuite", name=path, tests=str(max(len(found), 1)), failures=str(len(found)), errors="0"
        )
        if not found:
            ET.SubElement(suite, "testcase", name="enslint", classname=path)
        for d in found:
            case = ET.SubElement(suite, "testcase", name=f"enslint.{d.code}", classname=path, line=str(d.row))
            failure = ET.SubElement(case, "failure", message=d.message)
            failure.text = f"line {d.row}, col {d.column}, {d.message}"
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def concise_lines(diagnostics: list[Diagnostic], unsafe: bool = False) -> list[str]:
    """`path:line:col: CODE message`, nothing else (no colour, no summary)."""
    return text_lines(diagnostics, Style(False), unsafe)


def statistics_json(diagnostics: list[Diagnostic], unsafe: bool = False) -> str:
    counts = Counter((d.code, d.name) for d in diagnostics)
    fixable_counts = Counter(d.code for d in diagnostics if fixable(d, unsafe))
    return json.dumps(
        [
            {"code": code, "name": name, "count": count, "fixable": fixable_counts[code]}
            for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        ],
        indent=2,
    )
