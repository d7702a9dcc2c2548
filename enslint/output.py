"""Render diagnostics: ruff-style text lines, JSON, statistics."""

from __future__ import annotations

import json
import textwrap
from collections import Counter

from enslint.checker import Diagnostic

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


def fixable(d: Diagnostic, unsafe: bool) -> bool:
    return d.fix_for(unsafe) is not None


def text_lines(diagnostics: list[Diagnostic], style: Style, unsafe: bool = False, details: bool = False) -> list[str]:
    """One line per finding; with `details`, its long explanation below it, wrapped at
    word boundaries and indented (the fix on offer last)."""
    colon = style.dim(":")
    lines = []
    for d in diagnostics:
        lines.append(
            f"{style.bold(d.path)}{colon}{d.row}{colon}{d.column}{colon} {style.red(d.code)} "
            f"{style.bold('[*] ') if fixable(d, unsafe) else ''}{d.message}"
        )
        if details and d.details:
            lines += textwrap.wrap(d.details, 100, initial_indent="    ", subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)
            fix = d.fix_for(unsafe) or (d.fixes[0] if d.fixes else None)
            if fix is not None:
                wrapped = textwrap.wrap(f"{fix.applicability} fix: {fix.message}", 100, initial_indent="    ", subsequent_indent="    ", break_long_words=False)
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
        text += f"\nNo fixes available ({_plural(hidden, 'hidden fix')} can be enabled with the `--unsafe-fixes` option)."
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
