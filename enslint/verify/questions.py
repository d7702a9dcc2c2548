"""What a class's verify configuration lacks, asked once, as a table ready to paste.

verify builds a class from `[tool.enslint.verify."Class"]`: constructor keywords
(`init`), one shape per input (`inputs`) and the method. When keys are missing, the user
is told all of them at once, with a table written from the constructor's and the
method's signatures: defaults filled in, and `...` where only the user knows the value
(TOML refuses `...`, so a table pasted unfilled is a config error at that line, never a
silent guess).
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field

BATCH = 32  # the batch a pasted `inputs` starts with; --batch overrides it when timing


@dataclass
class Questions:
    """The keys a class's table lacks, and the table that answers them."""

    table_name: str
    missing_init: list[str] = field(default_factory=list)  # constructor parameters without a value
    missing_inputs: list[str] = field(default_factory=list)  # the method's positional inputs
    lines: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing_init or self.missing_inputs)

    def summary(self) -> str:
        """One line: which keys, and where they go."""
        asked = []
        if self.missing_init:
            asked.append(
                f"init ({', '.join(self.missing_init)} {'has' if len(self.missing_init) == 1 else 'have'} no value)"
            )
        if self.missing_inputs:
            asked.append(f"inputs (one shape per argument: {', '.join(self.missing_inputs)})")
        return (
            f"[tool.enslint.verify.{self.table_name}] needs {' and '.join(asked)}: add this to pyproject.toml "
            "and replace each ..."
        )

    def table(self) -> str:
        return "\n".join(self.lines)


def toml_value(value: object) -> str | None:
    """`value` as TOML, or None where TOML cannot spell it (a class, None, an object)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, (list, tuple)):
        items = [toml_value(item) for item in value]
        written = [item for item in items if item is not None]
        return None if len(written) != len(items) else f"[{', '.join(written)}]"
    if isinstance(value, dict) and all(isinstance(key, str) and key.isidentifier() for key in value):
        entries = {key: toml_value(item) for key, item in value.items()}
        if any(item is None for item in entries.values()):
            return None
        return "{ " + ", ".join(f"{key} = {item}" for key, item in entries.items()) + " }"
    return None


def _expression(value: object) -> str:
    """How an init expression ("=...") would name `value`: `nn.ReLU` for torch.nn's own."""
    name = getattr(value, "__qualname__", None)
    module = getattr(value, "__module__", None)
    if name is None or module is None:
        return repr(value)
    if module.startswith("torch.nn"):
        import torch

        if getattr(torch.nn, name, None) is value:
            return f"nn.{name}"
    return f"__import__({module!r}).{name}" if "." not in module else f"__import__({module!r}, fromlist=['_']).{name}"


def _annotation(parameter: inspect.Parameter) -> str:
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return ""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _parameters(function: object) -> list[inspect.Parameter]:
    """The parameters after `self`; none where the signature cannot be read (a builtin)."""
    if not callable(function):
        return []  # what inspect.signature's TypeError gives below
    try:
        return list(inspect.signature(function).parameters.values())[1:]
    except (TypeError, ValueError):
        return []


def required_init(cls: type[object], given: dict | None) -> list[str]:
    """The constructor's parameters without a default that `given` does not set."""
    given = given or {}
    return [
        p.name
        for p in _parameters(cls.__init__)
        if p.default is inspect.Parameter.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in given
    ]


def method_inputs(cls: type, method: str) -> list[str]:
    """The positional parameters of `method` that have no default: one shape each."""
    return [
        p.name
        for p in _parameters(getattr(cls, method, None))
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def ask(cls: type, class_name: str, method: str, init: dict | None, ask_init: bool, ask_inputs: bool) -> Questions:
    """The questions for `cls` (init given so far: `init`); `ask_*`: which keys to ask."""
    table_name = f'"{class_name}"' if not class_name.isidentifier() else class_name
    questions = Questions(table_name)
    if ask_init:
        questions.missing_init = required_init(cls, init)
    if ask_inputs:
        questions.missing_inputs = method_inputs(cls, method)
        if not questions.missing_inputs:
            questions.missing_inputs = ["(none found in the signature)"]
    if not questions:
        return questions
    lines = [f"[tool.enslint.verify.{table_name}]"]
    if method != "forward":
        lines.append(f'method = "{method}"')
    if questions.missing_inputs:
        names = [n for n in questions.missing_inputs if not n.startswith("(")]
        shapes = ", ".join(f"[{BATCH}, ...]" for _ in names) or f"[{BATCH}, ...]"
        lines.append(f"inputs = [{shapes}]  # {method}({', '.join(names)}): one shape per argument, batch first")
    if questions.missing_init:
        lines += ["", f"[tool.enslint.verify.{table_name}.init]"]
        lines += _init_lines(cls, init or {})
    questions.lines = lines
    return questions


def _init_lines(cls: type[object], given: dict) -> list[str]:
    lines = []
    for parameter in _parameters(cls.__init__):
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            lines.append(f"# {parameter.name}: takes **{parameter.name}; add its keys here if needed")
            continue
        name = parameter.name
        if name in given:
            shown = toml_value(given[name])
            lines.append(f"{name} = {shown}" if shown is not None else f"# {name}: as already configured")
        elif parameter.default is inspect.Parameter.empty:
            hint = _annotation(parameter)
            lines.append(f"{name} = ...  # required{': ' + hint if hint else ''}")
        else:
            shown = toml_value(parameter.default)
            if shown is not None:
                lines.append(f"{name} = {shown}  # default")
            elif parameter.default is None:
                lines.append(f"# {name}: default None")
            else:
                expression = _expression(parameter.default)
                lines.append(f'# {name}: default {expression}; another value is written {name} = "={expression}"')
    return lines
