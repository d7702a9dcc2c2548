"""Per-member code written once for the stacked outputs: the text, and that it computes
what torch.vmap of the per-member code computes."""

from __future__ import annotations

import libcst as cst
import pytest

from enslint.analysis.imports import ImportTable
from enslint.rewrites.lifting import lift, torch_functions

IMPORTS = ImportTable.of_module(cst.parse_module("import torch\nimport torch.nn.functional as F\n"))
RESOLVE = torch_functions(IMPORTS)

LIFTED = [
    ("out.transpose(0, 1)", "s.transpose(1, 2)"),
    ("out.transpose(-1, -2)", "s.transpose(-1, -2)"),
    ("torch.tanh(out) * 2", "torch.tanh(s) * 2"),
    ("F.softmax(out, dim=1)", "F.softmax(s, dim=2)"),
    ("F.log_softmax(out, -1)", "F.log_softmax(s, -1)"),
    ("out.squeeze(-1)", "s.squeeze(-1)"),
    ("out.sum(0, keepdim=True)", "s.sum(1, keepdim=True)"),
    ("-out.relu()", "-s.relu()"),
    ("F.leaky_relu(out, 0.2).unsqueeze(0)", "F.leaky_relu(s, 0.2).unsqueeze(1)"),
    ("torch.flatten(out)", "torch.flatten(s, 1)"),
    ("out.mean(dim=0)", "s.mean(dim=1)"),
]
KEPT_IN_VMAP = [
    "out.sum()",  # over every dim: the member axis would be summed too
    "out.squeeze()",
    "out.view(-1, 4)",  # a shape, not dims
    "out + other",  # another tensor: where it lines up is not known
    "out.transpose(k, 1)",  # a dim that is not a literal
    "some_function(out)",
    "torch.cat([out, out], 1)",
]


@pytest.mark.parametrize(("element", "expected"), LIFTED)
def test_lifted_text(element, expected):
    assert lift(element, "out", "s", RESOLVE) == expected


@pytest.mark.parametrize("element", KEPT_IN_VMAP)
def test_not_lifted(element):
    assert lift(element, "out", "s", RESOLVE) is None


@pytest.mark.parametrize(("element", "expected"), LIFTED)
def test_lifted_code_computes_what_vmap_computes(element, expected):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F  # noqa: N812

    stacked = torch.randn(5, 3, 4, dtype=torch.float64)
    names = {"torch": torch, "F": F, "s": stacked}
    per_member = eval(f"lambda out: {element}", names)  # noqa: S307 - the test's own strings
    torch.testing.assert_close(eval(expected, names), torch.vmap(per_member)(stacked))  # noqa: S307
