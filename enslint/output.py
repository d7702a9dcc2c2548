"""Render diagnostics: ruff-style text lines, JSON, statistics."""

from __future__ import annotations

import json
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


def text_lines(diagnostics: list[Diagnostic], style: Style) -> list[str]:
    colon = style.dim(":")
    return [
        f"{style.bold(d.path)}{colon}{d.row}{colon}{d.column}{colon} {style.red(d.code)} {d.message}"
        for d in diagnostics
    ]


def summary(diagnostics: list[Diagnostic], files: int, style: Style) -> str:
    if not diagnostics:
        return style.green("All checks passed!") + f" ({files} file{'s' if files != 1 else ''} checked)"
    n = len(diagnostics)
    return f"Found {n} error{'s' if n != 1 else ''} in {files} file{'s' if files != 1 else ''} checked."


def statistics_lines(diagnostics: list[Diagnostic], style: Style) -> list[str]:
    counts = Counter((d.code, d.name) for d in diagnostics)
    width = max((len(str(c)) for c in counts.values()), default=1)
    return [
        f"{count:>{width}}\t{style.red(code)}\t{name}"
        for (code, name), count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def to_json(diagnostics: list[Diagnostic]) -> str:
    items = [
        {
            "code": d.code,
            "name": d.name,
            "message": d.message,
            "filename": d.filename,
            "location": {"row": d.row, "column": d.column},
            "end_location": {"row": d.end_row, "column": d.end_column},
            "noqa_row": d.row,
            "fix": None,
            "url": RULES_URL.format(code=d.code) if d.code != "ENS000" else None,
        }
        for d in diagnostics
    ]
    return json.dumps(items, indent=2)
