"""Inputs that must not crash, hang or be judged differently from Python."""

from __future__ import annotations

import pytest
from helpers import findings_for

from enslint.checker import FileJob, check_bytes
from enslint.config import Config
from enslint.rules import Settings

# Candidates for analysis (they mention a member collection and loop), broken for Python.
HEADER = "import torch\nfrom torch import nn  # ModuleList for\n"


def ens000(source: str) -> list[str]:
    job = FileJob("m.py", "m.py", Config(root=__import__("pathlib").Path(".")).enabled_codes(), Settings())
    return [d.message for d in check_bytes(job, source.encode("utf-8")) if d.code == "ENS000"]


@pytest.mark.parametrize(
    "body, said",
    [
        ('s = "\\u12"\n', "truncated \\uXXXX escape"),  # Python: (unicode error)
        ("type X = int\n", "syntax error for Python"),  # 3.12 syntax
        ("x = 1\n\ufeffy = 2\n", "syntax error for Python"),  # a BOM that is not the first character
        ("x = " + "(" * 5000 + "1" + ")" * 5000 + "\n", "too many nested parentheses"),  # libcst's parser crashed on it
        ("y = " + " + ".join(["x"] * 50000) + "\n", "cannot parse"),  # Python's recursion limit; libcst crashed after minutes
    ],
    ids=["truncated-escape", "type-alias", "inner-bom", "deep-parentheses", "long-sum"],
)
def test_what_python_rejects_is_ens000_even_for_a_candidate_file(body, said):
    (message,) = ens000(HEADER + body + "class A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n")
    assert said in message


def test_what_python_accepts_is_analysed():
    source = HEADER + "x = 1\ny = " + " + ".join(["x"] * 800) + "\n"
    assert ens000(source) == []
    assert findings_for(HEADER + "x = 1\n") == []


def test_an_encoding_cookie_with_old_mac_line_endings_is_read_as_python_reads_it():
    source = '# -*- coding: latin-1 -*-\rs = "\xe9"\rimport torch\r'.encode("latin-1")
    compile(source, "m.py", "exec")  # Python accepts it
    job = FileJob("m.py", "m.py", Config(root=__import__("pathlib").Path(".")).enabled_codes(), Settings())
    assert check_bytes(job, source) == []


@pytest.mark.xfail(strict=True, reason="libcst's tokenizer rejects a backslash-only line after an indented block; Python joins it away (found by benchmarks/fuzz.py)")
def test_a_backslash_only_line_after_a_block_is_analysed():
    source = HEADER + "class B:\n    def f(self):\n        return 1\n\n\\\nclass A(nn.Module):\n    def forward(self, x):\n        return [m(x) for m in self.ms]\n"
    compile(source, "m.py", "exec")  # Python runs it
    assert ens000(source) == []
