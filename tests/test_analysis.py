"""The file model and the rules' precision on the forms the issue lists."""

from __future__ import annotations

import textwrap

import libcst as cst
import pytest
from helpers import findings_for, messages_for, messages_of

from enslint.analysis.imports import ImportTable
from enslint.analysis.model import build_model

HEADER = "import torch\nfrom torch import nn\n\n"


def model_of(source: str):
    return build_model(cst.parse_module(textwrap.dedent(source)))


def ensemble(init: str, forward: str, header: str = HEADER, base: str = "nn.Module") -> str:
    """A module class `E(d, n)` with the given `__init__` and `forward` bodies."""
    return (
        header
        + f"class E({base}):\n"
        + "    def __init__(self, d, n):\n"
        + "        super().__init__()\n"
        + textwrap.indent(textwrap.dedent(init), " " * 8)
        + "\n    def forward(self, x):\n"
        + textwrap.indent(textwrap.dedent(forward), " " * 8)
    )


LINEAR_HEADS = "self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\n"


# -- imports --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "imports, expr",
    [
        ("import torch", "torch.nn.Linear"),
        ("import torch.nn as nn", "nn.Linear"),
        ("from torch import nn", "nn.Linear"),
        ("import torch.nn as tnn", "tnn.Linear"),
        ("from torch.nn import Linear", "Linear"),
        ("from torch.nn import Linear as L", "L"),
        ("try:\n    from torch.nn import Linear\nexcept ImportError:\n    pass", "Linear"),
    ],
)
def test_import_styles_resolve(imports, expr):
    table = ImportTable.of_module(cst.parse_module(imports + "\n"))
    assert table.qualify(cst.parse_expression(expr)) == "torch.nn.Linear"


def test_unimported_names_do_not_resolve():
    table = ImportTable.of_module(cst.parse_module("from .layers import nn\n"))
    assert table.qualify(cst.parse_expression("nn.Linear")) is None


@pytest.mark.parametrize(
    "header, base",
    [
        ("import torch\nimport torch.nn\n\n", "torch.nn.Module"),
        ("import torch\nfrom torch.nn import Module, ModuleList, Linear\nnn = torch.nn\n\n", "Module"),
        ("import torch\nimport torch.nn as nn\n\nclass Base(nn.Module):\n    pass\n\n", "Base"),
    ],
)
def test_module_detection(header, base):
    source = ensemble(
        LINEAR_HEADS.replace("nn.", "torch.nn."), "return torch.stack([h(x) for h in self.heads])\n", header, base
    )
    assert findings_for(source) == [
        (source.splitlines().index("        return torch.stack([h(x) for h in self.heads])") + 1, "ENS001")
    ]


def test_class_with_unknown_base_is_checked_when_its_members_are_modules():
    # `mylib.Module` cannot be read, but an nn.ModuleList holds modules whoever holds it.
    source = "import torch\nfrom mylib import Module\n\n" + ensemble(
        LINEAR_HEADS, "return torch.stack([h(x) for h in self.heads])\n", "", "Module"
    )
    source = source.replace("nn.ModuleList", "torch.nn.ModuleList").replace("nn.Linear", "torch.nn.Linear")
    assert [code for _, code in findings_for(source)] == ["ENS001"]
    # A plain list is not registered anywhere: nothing proves its members are modules.
    plain = source.replace("torch.nn.ModuleList(", "list(")
    assert findings_for(plain) == []


# -- identical members: evidence required ----------------------------------------------
@pytest.mark.parametrize(
    "init",
    [
        LINEAR_HEADS,
        "self.heads = nn.ModuleList(nn.Linear(d, 2) for _ in range(n))\n",
        "self.heads = nn.ModuleList()\nfor _ in range(n):\n    self.heads.append(nn.Linear(d, 2))\n",
        "heads = []\nfor i in range(n):\n    heads.append(nn.Linear(d, 2))\nself.heads = nn.ModuleList(heads)\n",
        "layer = nn.Linear(d, 2)\nself.heads = nn.ModuleList([copy.deepcopy(layer) for _ in range(n)])\n",
        "self.heads = nn.ModuleList([make_head(d) for _ in range(n)])\n",
        "self.heads = nn.ModuleList([nn.Linear(d, 2), nn.Linear(d, 2), nn.Linear(d, 2)])\n",
        "self.heads = []\nfor i in range(n):\n    head = nn.Linear(d, 2)\n    self.add_module(f'head{i}', head)\n    self.heads.append(head)\n",
    ],
    ids=["listcomp", "genexp", "append-loop", "local-list", "deepcopy", "factory", "literal-repeat", "add_module"],
)
def test_identical_member_evidence(init):
    source = "import copy\n" + ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")
    assert [code for _, code in findings_for(source)] == ["ENS001"]


@pytest.mark.parametrize(
    "init",
    [
        "self.heads = nn.ModuleList([nn.Linear(c, 2) for c in d])\n",
        "self.heads = nn.ModuleList([nn.Linear(d, 2), nn.Linear(d, 3)])\n",
        "self.heads = nn.ModuleList()\nfor i in range(n):\n    self.heads.append(nn.Linear(d * (i + 1), 2))\n",
        "self.heads = nn.ModuleList()\nfor i in range(n):\n    layer = nn.Linear(d + i, 2)\n    self.heads.append(layer)\n",
        "self.heads = nn.ModuleList([nn.Linear(d, 2) for i in range(n) if i % 2])\n",
        "self.heads = [nn.Linear(d, 2) for _ in range(n)]\n",
        "self.heads = nn.ModuleList(build_heads(d, n))\n",
    ],
    ids=[
        "reads-loop-var",
        "listed-different",
        "append-reads-index",
        "local-reads-index",
        "filtered",
        "unregistered-list",
        "opaque-builder",
    ],
)
def test_no_evidence_no_finding(init):
    source = ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")
    assert findings_for(source) == []


def test_min_members_counts_literal_sizes():
    source = ensemble(
        "self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(3)])\n",
        "return torch.stack([h(x) for h in self.heads])\n",
    )
    assert findings_for(source, min_members=3) != []
    assert findings_for(source, min_members=4) == []


# -- loop forms --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "forward, code",
    [
        ("return torch.stack([h(x) for h in self.heads])\n", "ENS001"),
        ("return torch.cat([h.forward(x) for h in self.heads], -1)\n", "ENS001"),
        ("return sum(h(x) for h in self.heads)\n", "ENS001"),
        ("return torch.stack([h(x) for h in self.heads]).mean(0)\n", "ENS001"),
        ("return tuple(h(x) for h in self.heads)\n", "ENS001"),
        ("return [h(x) for h in self.heads]\n", "ENS001"),
        ("outs = []\nfor h in self.heads:\n    y = h(x)\n    outs.append(y)\nreturn torch.stack(outs)\n", "ENS001"),
        ("acc = 0\nfor h in self.heads:\n    acc += h(x)\nreturn acc\n", "ENS001"),
        # A helper that combines the list, whatever it does, still gets E results.
        ("outs = []\nfor h in self.heads:\n    outs.append(h(x))\nreturn self.combine(outs)\n", "ENS001"),
        ("return [h(x[:, i]) for i, h in enumerate(self.heads)]\n", "ENS002"),
        ("return [self.heads[i](x[:, i, :]) for i in range(len(self.heads))]\n", "ENS002"),
        ("return [h(x.select(1, i)) for i, h in enumerate(self.heads)]\n", "ENS002"),
        ("return [h(xi) for h, xi in zip(self.heads, x.unbind(1))]\n", "ENS002"),
        ("return [h(xi) for xi, h in zip(torch.unbind(x, 1), self.heads)]\n", "ENS002"),
        ("xs = x.unbind(1)\nreturn [h(xs[i]) for i, h in enumerate(self.heads)]\n", "ENS002"),
        (
            "outs = []\nfor i, h in enumerate(self.heads):\n    xi = x[:, i]\n    outs.append(h(xi))\nreturn outs\n",
            "ENS002",
        ),
    ],
)
def test_loop_forms(forward, code):
    source = ensemble(LINEAR_HEADS, forward)
    assert [c for _, c in findings_for(source)] == [code]


@pytest.mark.parametrize(
    "forward",
    [
        "for h in self.heads:\n    x = h(x)\nreturn x\n",
        "for h in self.heads:\n    x = x + h(x)\nreturn x\n",
        "for h in self.heads:\n    h(x)\nreturn x\n",
        "outs = []\nfor h in self.heads:\n    outs.append(h(x))\nreturn len(outs)\n",
        "return [h(x[i]) for i, h in enumerate(self.heads)]\n",
        "return [h(x[:, i], x[:, i + 1]) for i, h in enumerate(self.heads)]\n",
        "return [h(x[:, j]) for j, h in zip(order, self.heads)]\n",
        "return [h(y) for h, y in zip(self.heads, ys)]\n",
        "return [h(x[:, i]) for h in self.heads for i in range(3)]\n",
    ],
    ids=[
        "chain",
        "residual",
        "no-combine",
        "only-counted",
        "x[i]-unknown-type",
        "two-slices",
        "reordered",
        "zip-list",
        "cross-product",
    ],
)
def test_loop_forms_not_flagged(forward):
    source = ensemble(LINEAR_HEADS, forward)
    assert findings_for(source) == []


def test_indexed_plain_slice_needs_a_known_tensor():
    forward = "x = x.view(x.shape[0], len(self.heads), -1).transpose(0, 1)\nreturn [h(x[i]) for i, h in enumerate(self.heads)]\n"
    assert [c for _, c in findings_for(ensemble(LINEAR_HEADS, forward))] == ["ENS002"]


def test_range_of_size_attribute():
    init = "self.n = n\n" + LINEAR_HEADS
    forward = "return torch.stack([self.heads[i](x[:, i]) for i in range(self.n)], 1)\n"
    assert [c for _, c in findings_for(ensemble(init, forward))] == ["ENS002"]


def test_any_range_bound_indexing_a_collection_is_a_member_loop():
    # The index into an identical collection is the evidence, not the bound.
    init = "self.k = 3\n" + LINEAR_HEADS
    forward = "return torch.stack([self.heads[i](x[:, i]) for i in range(self.k)], 1)\n"
    assert [c for _, c in findings_for(ensemble(init, forward))] == ["ENS002"]
    forward = "outs = []\nfor i in range(x.shape[1]):\n    outs.append(self.heads[i](x[:, i]))\nreturn outs\n"
    assert [c for _, c in findings_for(ensemble(LINEAR_HEADS, forward))] == ["ENS002"]


def test_range_loop_that_indexes_no_collection_is_not_a_member_loop():
    init = "self.k = 3\n" + LINEAR_HEADS
    forward = "outs = []\nfor i in range(self.k):\n    outs.append(x[:, i] * 2)\nreturn torch.stack(outs, 1)\n"
    assert findings_for(ensemble(init, forward)) == []


def test_any_method_and_explicit_forward():
    source = ensemble(LINEAR_HEADS, "return self.predict(x)\n") + textwrap.indent(
        "def predict(self, x):\n    vals = []\n    for h in self.heads:\n        vals.append(h.forward(x, scale=2))\n    return torch.stack(vals, 1)\n",
        "    ",
    )
    assert [c for _, c in findings_for(source)] == ["ENS001"]


# -- messages ---------------------------------------------------------------------------
def test_messages_name_class_collection_count_type_and_fused_form():
    message = next(
        iter(messages_for(ensemble(LINEAR_HEADS, "return torch.stack([h(x) for h in self.heads])\n")).values())
    )
    for part in (
        "`E.forward`",
        "`self.heads`",
        "n identical",
        "`nn.Linear(d, 2)`",
        "forward calls",
        "one `nn.Linear(d, n * 2)`",
        "stacked",
    ):
        assert part in message


def test_activation_slices_explain_quadratic_backward():
    forward = "h = torch.relu(self.trunk(x))\nreturn [m(h[:, i]) for i, m in enumerate(self.heads)]\n"
    init = "self.trunk = nn.Linear(d, d)\n" + LINEAR_HEADS
    (message,) = messages_of(ensemble(init, forward), "ENS003").values()
    assert "slice of the activation `h`" in message
    assert "sums n full-size gradients of `h`" in message and "n squared" in message
    assert "`h.unbind(1)`" in message
    # The per-member loop is ENS002's, which no longer speaks of the backward.
    (loop,) = messages_of(ensemble(init, forward), "ENS002").values()
    assert "gradient" not in loop


def test_input_slices_and_unbind_do_not_claim_quadratic_backward():
    for forward in (
        "return [m(x[:, i]) for i, m in enumerate(self.heads)]\n",
        "h = self.trunk(x)\nreturn [m(hi) for m, hi in zip(self.heads, h.unbind(1))]\n",
    ):
        init = "self.trunk = nn.Linear(d, d)\n" + LINEAR_HEADS
        assert messages_of(ensemble(init, forward), "ENS003") == {}
        assert messages_of(ensemble(init, forward), "ENS002")


def test_seed_nest_messages_describe_one_op_for_all_heads(tmp_path):
    from conftest import FIXTURES

    source = (FIXTURES / "positive" / "seed_shared_trunk_head_groups.py").read_text()
    messages = {**messages_of(source, "ENS001"), **messages_of(source, "ENS002")}
    assert len(messages) == 2
    for message in messages.values():
        assert "one batched op for all ensemble_size x num_heads heads" in message
        assert "(ensemble_size, hidden_dim, num_heads * num_actions)" in message
    (slicing,) = messages_of(source, "ENS003").values()
    assert "full-size gradients of `x`" in slicing and "`x.unbind(1)`" in slicing


def test_model_records_collections_and_loops():
    model = model_of(ensemble(LINEAR_HEADS, "return torch.stack([h(x) for h in self.heads], 1)\n"))
    (cls,) = model.classes
    heads = cls.collections["heads"]
    assert (heads.container, heads.size, heads.member.kind, heads.member.type_name) == (
        "nn.ModuleList",
        "n",
        "linear",
        "nn.Linear",
    )
    loop = next(l for l in model.loops if l.method == "forward")
    assert loop.combine.text == "stacked" and [c.input for c in loop.calls] == ["same"]
    assert (loop.combine.site.kind, loop.combine.site.dim) == ("stack", "1")


# How a loop's results are combined, as the analysis records it once for the message
# (text) and for the rewrites (the site's kind, dim and wrapper, and whether the element
# is the member call alone); None where no rewrite can replace the combine.
COMBINES = [
    ("return torch.stack([h(x) for h in self.heads], dim=-1)\n", "stacked", ("stack", "-1", None, True)),
    ("return torch.cat([h(x) for h in self.heads], dim=1)\n", "concatenated", ("cat", "1", None, True)),
    ("return sum(h(x) for h in self.heads) / len(self.heads)\n", "summed", ("mean", None, None, True)),
    ("return torch.stack([h(x) for h in self.heads]).mean(0)\n", "averaged", ("mean", None, None, True)),
    ("return tuple(h(x) for h in self.heads)\n", "returned as a tuple", ("unbind", None, "tuple", True)),
    # the stack (or cat) around a tuple or list of the outputs is what combines them
    ("return torch.stack(tuple(h(x) for h in self.heads), dim=1)\n", "stacked", ("stack", "1", None, True)),
    ("return torch.cat(list(h(x) for h in self.heads), -1)\n", "concatenated", ("cat", "-1", None, True)),
    ("return [h(x).relu() for h in self.heads]\n", "returned as a list", ("unbind", None, "list", False)),
    (
        "outs = []\nfor h in self.heads:\n    y = h(x)\n    outs.append(y)\nreturn torch.stack(outs, dim=1)\n",
        "stacked",
        ("stack", "1", None, True),
    ),
    ("total = 0\nfor h in self.heads:\n    total += h(x)\nreturn total\n", "summed", ("sum", None, None, True)),
    (
        "out = x.new_zeros(len(self.heads), x.shape[0], 4)\nfor i, h in enumerate(self.heads):\n"
        "    out[i] = h(x)\nreturn out\n",
        "written into a preallocated tensor by index",
        ("stack", "0", None, True),
    ),
    ("return self.combine([h(x) for h in self.heads])\n", "passed to `self.combine`", None),
]


@pytest.mark.parametrize("forward, text, site", COMBINES, ids=[c[1] + "-" + str(i) for i, c in enumerate(COMBINES)])
def test_one_combine_fact_per_loop(forward, text, site):
    model = model_of(ensemble(LINEAR_HEADS, forward))
    loop = next(l for l in model.loops if l.method == "forward")
    found = loop.combine.site
    assert loop.combine.text == text
    assert (None if found is None else (found.kind, found.dim, found.wrapper, loop.combine.call_alone)) == site


def test_enumerate_with_start_is_not_a_member_index():
    forward = "return [h(x[:, i]) for i, h in enumerate(self.heads, 1)]\n"
    assert findings_for(ensemble(LINEAR_HEADS, forward)) == []
    forward = "return torch.stack([h(x) for i, h in enumerate(self.heads, start=1)])\n"
    assert [c for _, c in findings_for(ensemble(LINEAR_HEADS, forward))] == ["ENS001"]


def test_self_may_have_another_name():
    source = ensemble(LINEAR_HEADS, "return torch.stack([h(x) for h in self.heads])\n").replace("self", "this")
    assert [c for _, c in findings_for(source)] == ["ENS001"]


@pytest.mark.parametrize(
    "init, why",
    [
        ("self.heads = nn.ModuleList([nn.Linear(c, 2) for c in d])\n", "reads the loop variable `c`"),
        ("self.heads = nn.ModuleList([nn.Linear(d, 2), nn.Linear(d, 3)])\n", "listed with different constructors"),
        ("self.heads = nn.ModuleList([nn.Linear(d, 2) for i in range(n) if i])\n", "filtered by a condition"),
        (
            "self.heads = nn.ModuleList()\nfor i in range(n):\n    if i:\n        self.heads.append(nn.Linear(d, 2))\n",
            "appended conditionally",
        ),
    ],
)
def test_model_says_why_members_are_not_identical(init, why):
    model = model_of(ensemble(init, "return x\n"))
    heads = model.classes[0].collections["heads"]
    assert heads.member is None and why in heads.why_heterogeneous


# -- the forms real projects write (issue 8), each with variants ---------------------------
def codes(source: str) -> list[str]:
    return [code for _, code in findings_for(source)]


@pytest.mark.parametrize(
    "init, forward",
    [
        # `if individual:` around an append loop, the shared layer in the else branch
        (
            "self.individual = n > 1\nif self.individual:\n    self.heads = nn.ModuleList()\n    for _ in range(n):\n        self.heads.append(nn.Linear(d, 2))\nelse:\n    self.heads = nn.Linear(d, 2)\n",
            "if self.individual:\n    return torch.stack([h(x[:, i]) for i, h in enumerate(self.heads)], 1)\nreturn self.heads(x)\n",
        ),
        # a comprehension in the branch, `elif` chains, another flag name
        (
            "self.per_channel = d > 4\nif self.per_channel:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelif d > 2:\n    self.heads = nn.Linear(d, 2 * n)\nelse:\n    self.heads = None\n",
            "if self.per_channel:\n    out = []\n    for k in range(n):\n        out.append(self.heads[k](x[:, k, :]))\n    return torch.stack(out, dim=1)\nreturn x\n",
        ),
        # the same collection in both branches
        (
            "if d > 4:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelse:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\n",
            "return torch.stack([h(x) for h in self.heads])\n",
        ),
    ],
    ids=["if-append-loop", "elif-comprehension", "both-branches"],
)
def test_conditional_construction(init, forward):
    assert len(codes(ensemble(init, forward))) == 1


def _fixes_for(source: str) -> list[str]:
    from pathlib import Path

    from enslint.checking import FileJob, check_bytes
    from enslint.config import Config
    from enslint.rules import Settings

    job = FileJob("example.py", "example.py", Config(root=Path(".")).enabled_codes(), Settings())
    return [f.form for d in check_bytes(job, source.encode()) for f in d.fixes]


ONE_BRANCH = "if d > 4:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelse:\n    self.heads = nn.Linear(d, 2)\n"


def test_a_collection_built_in_one_branch_is_rewritten_where_the_loop_can_run():
    """`if individual:` builds the members, `else:` one layer; a loop over `self.heads`
    only runs in the configuration that built them (on the layer it would raise), so the
    rewrite of that branch and of the loop is exact wherever the original runs."""
    assert _fixes_for(ensemble(ONE_BRANCH, "return torch.stack([h(x) for h in self.heads])\n")) == [
        "wide layer",
        "vmap",
    ]
    # The layer of the other branch called in the other branch of the forward: still exact.
    forward = "if self.n > 1:\n    return torch.stack([h(x) for h in self.heads])\nelse:\n    return self.heads(x)\n"
    assert _fixes_for(ensemble(ONE_BRANCH + "self.n = n\n", forward)) == ["wide layer", "vmap"]


def test_a_collection_built_in_both_branches_or_used_outside_them_keeps_its_members():
    """Nothing may replace the collection; the call-time form leaves it as it is."""
    both = "if d > 4:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelse:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\n"
    assert _fixes_for(ensemble(both, "return torch.stack([h(x) for h in self.heads])\n")) == ["call-time vmap"]
    # A use that is not in a branch excluding the loop: what it reads would change.
    forward = "w = self.heads[0].weight\nreturn torch.stack([h(x) for h in self.heads]) * w.sum()\n"
    assert _fixes_for(ensemble(ONE_BRANCH, forward)) == ["call-time vmap"]
    # One the stacked storage answers as the list did (issue 19): the fused vmap form.
    forward = "n = len(self.heads)\nreturn torch.stack([h(x) for h in self.heads]) / n\n"
    assert _fixes_for(ensemble(ONE_BRANCH, forward)) == ["vmap"]


def test_branches_that_each_build_identical_members_are_an_ensemble():
    """Issue 18: in every run the members are copies of one another, whichever branch
    built them; only a form that keeps the members applies."""
    init = "if d > 4:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelse:\n    self.heads = nn.ModuleList([nn.Linear(d, 3) for _ in range(n)])\n"
    model = model_of(ensemble(init, "return torch.stack([h(x) for h in self.heads])\n"))
    (cls,) = model.classes
    assert cls.collections["heads"].per_branch
    assert codes(ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")) == ["ENS001"]


@pytest.mark.parametrize(
    "init",
    [
        # one branch builds copies, the other a tower
        "if d > 4:\n    self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\nelse:\n"
        "    self.heads = nn.ModuleList([nn.Linear(w, 2) for w in widths])\n",
        # the class chosen per element
        "self.heads = nn.ModuleList([nn.Linear(d, 2) if i % 2 else nn.Linear(d, 3) for i in range(n)])\n",
    ],
    ids=["a tower in the other branch", "chosen per element"],
)
def test_members_that_differ_in_some_run_are_not_identical(init):
    assert codes(ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")) == []


@pytest.mark.parametrize(
    "forward, code",
    [
        # three collections chained per index, on slices
        (
            "outs = []\nfor i in range(n):\n    z = self.a[i](x[:, i])\n    z = self.b[i](z)\n    outs.append(self.c[i](z))\nreturn torch.stack(outs, 1)\n",
            "ENS002",
        ),
        # the same chain written as nested calls on the same input
        ("return torch.stack([self.c[i](self.b[i](self.a[i](x))) for i in range(len(self.a))])\n", "ENS001"),
        # zip of the collections, an element-wise op between the steps
        ("return sum(c(torch.relu(b(a(x)))) for a, b, c in zip(self.a, self.b, self.c))\n", "ENS001"),
        # two collections side by side, each on its own tensor's slice
        (
            "y = x * 2\nout = []\nfor i in range(n):\n    out.append(self.a[i](x[:, i]) + self.b[i](y[:, i]))\nreturn torch.stack(out, 1)\n",
            "ENS002",
        ),
    ],
    ids=["index-chain", "nested-chain", "zip-chain", "side-by-side"],
)
def test_several_collections_per_member(forward, code):
    init = "".join(f"self.{c} = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])\n" for c in "abc")
    source = ensemble(init, forward)
    assert codes(source) == [code]
    message = next(iter(messages_for(source).values()))
    assert "`self.a`" in message and "`self.b`" in message and "collections per member" in message


@pytest.mark.parametrize(
    "forward",
    [
        "for i in range(n):\n    x = self.b[i](self.a[i](x))\nreturn x\n",
        "for i in range(n):\n    x = x + self.b[i](self.a[i](x))\nreturn x\n",
        "h = x\nfor a, b in zip(self.a, self.b):\n    h = b(a(h))\nreturn h\n",
    ],
    ids=["chain-across-iterations", "residual-across-iterations", "zip-carried"],
)
def test_chains_carried_across_iterations_are_not_flagged(forward):
    init = "".join(f"self.{c} = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])\n" for c in "ab")
    assert codes(ensemble(init, forward)) == []


@pytest.mark.parametrize(
    "forward",
    [
        "return torch.cat([h(x[:, i : i + 1]) for i, h in enumerate(self.heads)], -1)\n",
        "return torch.cat([h(x[..., i:i+1]) for i, h in enumerate(self.heads)], -1)\n",
        "return torch.cat([h(x.narrow(1, i, 1)) for i, h in enumerate(self.heads)], -1)\n",
        "return torch.cat([h(x[:, i].unsqueeze(-1)) for i, h in enumerate(self.heads)], -1)\n",
        "parts = torch.split(x, 2, dim=1)\nreturn torch.cat([h(parts[i]) for i, h in enumerate(self.heads)], -1)\n",
        "parts = x.chunk(len(self.heads), dim=-1)\nreturn torch.cat([h(p) for h, p in zip(self.heads, parts)], -1)\n",
        "return torch.cat([h(p) for h, p in zip(self.heads, torch.tensor_split(x, n, dim=1))], -1)\n",
    ],
    ids=["width-1", "ellipsis-width-1", "narrow", "unsqueezed", "torch.split", "chunk", "tensor_split"],
)
def test_slice_spellings(forward):
    assert codes(ensemble(LINEAR_HEADS, forward)) == ["ENS002"]


@pytest.mark.parametrize(
    "forward",
    [
        "b = x.shape[1]\nreturn torch.stack([h(x[i]) for i, h in enumerate(self.heads)])\n",
        "return torch.stack([self.heads[i](x[i]) for i in range(x.shape[0])])\n",
        "return torch.stack([self.heads[i](x[i]) for i in range(x.size(0))])\n",
        "assert x.dim() == 3\nreturn torch.stack([h(x[i]) for i, h in enumerate(self.heads)])\n",
    ],
    ids=["shape-read", "range-shape", "range-size", "dim-read"],
)
def test_member_first_index_when_the_code_shows_a_tensor(forward):
    assert codes(ensemble(LINEAR_HEADS, forward)) == ["ENS002"]


@pytest.mark.parametrize(
    "init",
    [
        # a helper method returning the collection
        "self.heads = self._make_heads(d, n)\n",
        # built in another method than __init__
        "self.build(d, n)\n",
        # extended with a list made by a loop
        "self.heads = nn.ModuleList()\nheads = []\nfor _ in range(n):\n    heads.append(nn.Linear(d, 2))\nself.heads.extend(heads)\n",
        # registered with setattr under computed names, several spellings
        "self.heads = []\nfor i in range(n):\n    h = nn.Linear(d, 2)\n    setattr(self, f'head{i}', h)\n    self.heads.append(h)\n",
        "self.heads = []\nfor i in range(n):\n    h = nn.Linear(d, 2)\n    setattr(self, 'head_' + str(i), h)\n    self.heads.append(h)\n",
        "self.heads = []\nfor i in range(n):\n    h = nn.Linear(d, 2)\n    setattr(self, 'head{}'.format(i), h)\n    self.heads.append(h)\n",
    ],
    ids=["helper-method", "build-method", "extend", "setattr-fstring", "setattr-concat", "setattr-format"],
)
def test_collections_built_by_helpers_and_outside_init(init):
    helpers = (
        "\n    def _make_heads(self, d, n):\n        return nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\n"
        "\n    def build(self, d, n):\n        self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])\n"
    )
    source = ensemble(init, "return torch.stack([h(x) for h in self.heads])\n") + helpers
    assert codes(source) == ["ENS001"]


def test_setattr_under_a_name_held_in_a_variable_is_not_read():
    # The prefilter looks for computed names in the call itself; a variable name is not one.
    init = "self.heads = []\nfor i in range(n):\n    h = nn.Linear(d, 2)\n    name = f'head{i}'\n    setattr(self, name, h)\n    self.heads.append(h)\n"
    assert codes(ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")) == []


@pytest.mark.parametrize(
    "init",
    [
        "layer = nn.Linear(d, d)\nself.heads = nn.ModuleList([layer for _ in range(n)])\n",
        "layer = nn.Linear(d, d)\nself.heads = nn.ModuleList([layer] * n)\n",
        "self.heads = nn.ModuleList(n * [nn.Linear(d, d)])\n",
        "layer = nn.Linear(d, d)\nself.heads = nn.ModuleList()\nfor _ in range(n):\n    self.heads.append(layer)\n",
    ],
    ids=["comprehension", "list-times", "times-list", "append-loop"],
)
def test_one_shared_instance_is_said_so(init):
    source = ensemble(init, "return torch.stack([h(x[:, i]) for i, h in enumerate(self.heads)], 1)\n")
    assert codes(source) == ["ENS002"]
    message = next(iter(messages_for(source).values()))
    assert "shared" in message and "call it once" in message


def test_fresh_instances_in_a_loop_are_not_shared():
    init = (
        "self.heads = nn.ModuleList()\nfor _ in range(n):\n    layer = nn.Linear(d, d)\n    self.heads.append(layer)\n"
    )
    message = next(iter(messages_for(ensemble(init, "return torch.stack([h(x) for h in self.heads])\n")).values()))
    assert "shared" not in message


PASSED_IN = (
    "import torch\nfrom torch import nn\n\n"
    "class Ensemble(nn.Module):\n"
    "    def __init__(self, models):\n"
    "        super().__init__()\n"
    "        self.models = nn.ModuleList(models)\n\n"
    "    def forward(self, x):\n"
    "        return torch.stack([m(x) for m in self.models]).mean(0)\n\n"
)


@pytest.mark.parametrize(
    "builder",
    [
        "def build(d, n):\n    return Ensemble([nn.Linear(d, 1) for _ in range(n)])\n",
        "def build(d, n):\n    models = []\n    for _ in range(n):\n        models.append(nn.Linear(d, 1))\n    return Ensemble(models=models)\n",
        "ENSEMBLE = Ensemble([nn.Linear(8, 1) for _ in range(5)])\n",
    ],
    ids=["comprehension-argument", "keyword-list-built-by-loop", "module-level"],
)
def test_members_passed_in_are_judged_by_their_call_sites(builder):
    source = PASSED_IN + builder
    assert codes(source) == ["ENS001"]
    assert "members built by `nn.Linear(" in next(iter(messages_for(source).values()))


@pytest.mark.parametrize(
    "builder",
    [
        "",
        "def build(a, b):\n    return Ensemble([a, b])\n",
        "def build(d, sizes):\n    return Ensemble([nn.Linear(d, s) for s in sizes])\n",
        "def build(d, n):\n    return Ensemble([nn.Linear(d, 1) for _ in range(n)]), Ensemble([nn.Linear(d, 1), nn.Linear(d, 2)])\n",
    ],
    ids=["no-call-site", "opaque-members", "per-index-sizes", "one-site-against"],
)
def test_members_passed_in_without_proof_are_not_flagged(builder):
    assert codes(PASSED_IN + builder) == []


@pytest.mark.parametrize(
    "forward",
    [
        "return torch.stack([h.score(x) for h in self.heads])\n",
        "outs = []\nfor h in self.heads:\n    outs.append(h(*x))\nreturn average(outs)\n",
        "outs = []\nfor h in self.heads:\n    z = h(x)\n    z = self.shared(z)\n    outs.append(z)\nreturn torch.stack(outs)\n",
        "k = 2\nreturn torch.stack([h(x) for h in self.heads[: k + 1]])\n",
    ],
    ids=["own-method", "starred-and-helper-combine", "shared-layer-after", "part-of-collection"],
)
def test_calls_and_combines_as_real_code_writes_them(forward):
    init = "self.shared = nn.Linear(2, 2)\nself.heads = nn.ModuleList([Head(d) for _ in range(n)])\n"
    head = "class Head(nn.Module):\n    def __init__(self, d):\n        super().__init__()\n        self.f = nn.Linear(d, 2)\n\n    def forward(self, x):\n        return self.f(x)\n\n    def score(self, x):\n        return self.f(x).sum(-1)\n\n\ndef average(xs):\n    return sum(xs) / len(xs)\n\n\n"
    assert codes(ensemble(init, forward, header=HEADER + head)) == ["ENS001"]


@pytest.mark.parametrize(
    "forward",
    [
        "return torch.stack([h.parameters() for h in self.heads])\n",
        "return torch.stack([h.undefined_method(x) for h in self.heads])\n",
    ],
    ids=["module-api", "method-the-class-lacks"],
)
def test_method_calls_that_are_not_computations(forward):
    init = "self.heads = nn.ModuleList([Head(d) for _ in range(n)])\n"
    head = "class Head(nn.Module):\n    def __init__(self, d):\n        super().__init__()\n        self.f = nn.Linear(d, 2)\n\n    def forward(self, x):\n        return self.f(x)\n\n\n"
    assert codes(ensemble(init, forward, header=HEADER + head)) == []


def test_collection_of_a_parent_class_in_the_same_file():
    source = HEADER + (
        "class Bank(nn.Module):\n    def __init__(self, d, n):\n        super().__init__()\n"
        "        self.blocks = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])\n\n"
        "class Probe(Bank):\n    def forward(self, x):\n        return sum(b(x) for b in self.blocks)\n"
    )
    assert codes(source) == ["ENS001"]
    assert "built in the parent class `Bank`" in next(iter(messages_for(source).values()))


@pytest.mark.parametrize(
    "holder",
    [
        "class Agent:\n    def __init__(self, d, n):\n        self.critics = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])\n",
        "class Agent(object):\n    def __init__(self, d, n):\n        self.critics = nn.ModuleList()\n        for _ in range(n):\n            self.critics.append(nn.Linear(d, 1))\n",
    ],
    ids=["plain-class", "object-base"],
)
def test_non_module_holders_of_module_collections(holder):
    source = HEADER + holder + "\n    def values(self, x):\n        return torch.stack([c(x) for c in self.critics])\n"
    assert codes(source) == ["ENS001"]
    assert "is not an nn.Module" in next(iter(messages_for(source).values()))


@pytest.mark.parametrize(
    "holder",
    [
        "class Agent:\n    def __init__(self, n):\n        self.models = [Forest() for _ in range(n)]\n",
        "class Agent:\n    def __init__(self, n):\n        self.models = []\n        for i in range(n):\n            m = Forest()\n            setattr(self, f'm{i}', m)\n            self.models.append(m)\n",
    ],
    ids=["plain-list", "setattr-on-a-plain-class"],
)
def test_non_module_holders_of_unproven_members(holder):
    source = (
        "import torch\nfrom sklearn.ensemble import RandomForestRegressor as Forest\n\n"
        + holder
        + ("\n    def predict(self, x):\n        return torch.stack([m(x) for m in self.models])\n")
    )
    assert codes(source) == []


SPARSE_ATTENTION = """
import torch
from torch import nn


class SparseAttention(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.qk = nn.Linear(d, d)

    def forward(self, x):
        scores = self.qk(x) @ x.transpose(-1, -2)
        if scores.max() > 10:
            scores = scores / scores.max()
        return scores.softmax(-1) @ x


class Heads(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.heads = nn.ModuleList([SparseAttention(d) for _ in range(n)])

    def forward(self, x):
        return torch.cat([h(x) for h in self.heads], dim=-1)
"""


@pytest.mark.parametrize(
    "member_forward, shown",
    [
        ("if scores.max() > 10:\n            scores = scores / scores.max()", "if scores.max() > 10"),
        ("keep = scores.nonzero()", "nonzero()"),
        ("n = int(scores.sum().item())", "item()"),
        ("scores = scores.to_sparse()", "to_sparse()"),
    ],
)
def test_vmap_is_neither_advised_nor_offered_for_data_dependent_members(member_forward, shown):
    source = SPARSE_ATTENTION.replace(
        "if scores.max() > 10:\n            scores = scores / scores.max()", member_forward
    )
    (message,) = messages_for(source).values()
    assert "torch.vmap(in_dims" not in message and "written by hand (torch.vmap cannot batch it" in message
    assert shown in message
    assert _fixes_for(source) == []


def test_a_branch_on_plain_values_does_not_stop_vmap():
    source = SPARSE_ATTENTION.replace("if scores.max() > 10:", "if isinstance(x, torch.Tensor) and self.training:")
    assert _fixes_for(source) == ["vmap"]


def test_a_helper_methods_loop_size_is_said_in_the_callers_words():
    source = HEADER + textwrap.dedent(
        """\
        class Critics(nn.Module):
            def __init__(self, d, n_critics):
                super().__init__()
                self.qs = nn.ModuleList()
                self._build(d, n_critics)

            def _build(self, width, count):
                for _ in range(count):
                    self.qs.append(nn.Linear(width, 1))

            def forward(self, x):
                return torch.stack([q(x) for q in self.qs])
        """
    )
    (message,) = messages_for(source).values()
    assert message.startswith("`Critics.forward`: n_critics `nn.Linear` members"), message
    assert "count" not in message


def test_members_built_per_branch_are_described_by_every_branch():
    source = HEADER + textwrap.dedent(
        """\
        class Heads(nn.Module):
            def __init__(self, d, a, n, dueling):
                super().__init__()
                if dueling:
                    self.heads = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.Linear(d, a)) for _ in range(n)])
                else:
                    self.heads = nn.ModuleList([nn.Linear(d, a) for _ in range(n)])

            def forward(self, x):
                return torch.stack([h(x) for h in self.heads])
        """
    )
    (message,) = messages_for(source).values()
    headline, details = message.split(" | ")
    assert "n identical members" in headline and "nn.Sequential" not in headline
    assert "(`nn.Linear(d, a)` or `nn.Sequential(nn.Linear(d, d), nn.Linear(d, a))`, as the branch" in details
    # The advice fits every branch: the general form, not the first branch's wide layer.
    assert "fuse them into `torch.func.stack_module_state`" in details
    assert "nn.Linear(d, n * a)" not in details and "baddbmm" not in details
