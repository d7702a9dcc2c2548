"""Loops over member collections, the member calls inside them, and how results combine.

A *member loop* is a `for` statement or a comprehension clause that visits the members
of a collection: `for m in self.heads`, `enumerate(self.heads)`, `self.heads.items()`,
`zip(self.heads, x.unbind(1))`, `zip(self.proj, self.norm)`, a part of it
(`self.heads[:k]`), or `for i in range(...)` with any bound when the body indexes a
collection with `i` (`self.heads[i](x)`: the index into an identical collection is the
evidence, not the bound); for nested collections, a loop over the member of an enclosing
member loop (`for head in group`). For each loop the model records every call of a member
(`m(x)`, `m.forward(x)`, `m.predict_proba(x)`, `self.heads[i](x)`, `est(*x)`; for a
group, the calls of its own members), which collection each call belongs to, what input
each call reads relative to the loop (the same tensor every time, slice `i` of one
tensor, the output of another member call of the same iteration, or something else), and
how the results are combined.

Why one module of this size: `_MethodAnalysis` is one pass over one method, and its
steps (finding the loops, classifying each member call's input, following slices and
names, wording the combine) read the same node index, bindings and loop stack; split
into modules they would pass that state around in every call. The combine's site, which
needs none of it, lives in combine.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import libcst as cst

from enslint.analysis.combine import Combine, LoopSpan, combine_at
from enslint.analysis.context import Collection, find_method
from enslint.analysis.kinds import CHAIN, GROUP, OTHER, SAME, SELF_COLLECTION, SLICE
from enslint.analysis.syntax import (
    COMPREHENSIONS,
    NodeIndex,
    calls_of,
    code_of,
    first_param,
    names_in,
    positional_args,
    target_names,
    walk,
)

if TYPE_CHECKING:
    from enslint.analysis.context import ClassInfo, FileContext

_COMBINERS = {
    "torch.stack": "stacked",
    "torch.cat": "concatenated",
    "torch.concat": "concatenated",
    "torch.concatenate": "concatenated",
    "torch.hstack": "concatenated",
    "torch.vstack": "concatenated",
    "torch.dstack": "concatenated",
    "torch.sum": "summed",
    "sum": "summed",
    "tuple": "returned as a tuple",
    "list": "returned as a list",
}
# Calls that look at a list of results without combining them.
_NOT_COMBINERS = {"len", "print", "isinstance", "type", "id", "repr", "str", "bool", "hasattr", "getattr", "setattr"}
_SPLITTERS = {"unbind": "unbind", "chunk": "chunk", "split": "chunk", "tensor_split": "chunk"}
_TENSOR_METHODS = {
    "view",
    "reshape",
    "permute",
    "transpose",
    "movedim",
    "moveaxis",
    "unflatten",
    "flatten",
    "contiguous",
    "float",
    "double",
    "half",
    "to",
    "expand",
    "repeat",
    "squeeze",
    "unsqueeze",
    "swapaxes",
    "relu",
    "tanh",
    "sigmoid",
    "softmax",
    "clone",
    "detach",
}
# Reshaping a member's slice before the call keeps it that member's slice.
_SHAPE_METHODS = {
    "squeeze",
    "unsqueeze",
    "view",
    "reshape",
    "flatten",
    "unflatten",
    "contiguous",
    "float",
    "double",
    "half",
    "to",
    "transpose",
    "permute",
}
# Reading any of these off a name shows the name is a tensor (a list has none of them).
_TENSOR_ATTRIBUTES = {"shape", "ndim", "dtype", "device", "is_cuda"}
_TENSOR_QUERIES = {"size", "dim", "numel", "stride", "element_size"}
_CREATION = {
    f"torch.{name}"
    for name in [
        "zeros",
        "ones",
        "empty",
        "full",
        "randn",
        "rand",
        "randint",
        "arange",
        "linspace",
        "tensor",
        "as_tensor",
        "from_numpy",
        "eye",
        "zeros_like",
        "ones_like",
        "empty_like",
    ]
}
# nn.Module's own API: calling these on each member is bookkeeping, not computation.
_MODULE_API = {
    "parameters",
    "named_parameters",
    "buffers",
    "named_buffers",
    "children",
    "named_children",
    "modules",
    "named_modules",
    "train",
    "eval",
    "requires_grad_",
    "zero_grad",
    "to",
    "cuda",
    "cpu",
    "half",
    "float",
    "double",
    "bfloat16",
    "type",
    "apply",
    "state_dict",
    "load_state_dict",
    "register_buffer",
    "register_parameter",
    "register_module",
    "add_module",
    "get_submodule",
    "get_parameter",
    "get_buffer",
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_backward_hook",
    "extra_repr",
    "share_memory",
    "reset_parameters",
    "reset_noise",
    "init_weights",
    "freeze",
    "unfreeze",
    "compile",
    "ipu",
    "xpu",
    # ...and a container's, for members that are lists themselves.
    "append",
    "extend",
    "insert",
    "pop",
    "remove",
    "clear",
    "index",
    "count",
    "keys",
    "values",
    "items",
    "update",
    "get",
    "copy",
}


@dataclass
class SliceInfo:
    tensor: str  # the sliced tensor as written: "x", "h"
    dim: str  # the sliced dimension as written: "1", "-1"
    via: str  # "index" (x[:, i]), "select", "narrow" (x[:, i:i+1]), "unbind" or "chunk"
    activation: bool  # computed inside the method, so it needs a gradient
    text: str  # the slice as written: "x[:, idx, :]"
    node: cst.BaseExpression | None = None  # the slice expression, for index, select and narrow


@dataclass
class MemberCall:
    node: cst.Call
    input: str  # SAME, SLICE, CHAIN or OTHER relative to the loop
    input_text: str
    slice: SliceInfo | None = None
    collection: Collection | None = None  # whose member is called
    collection_text: str = ""
    method: str | None = None  # set when called through a method other than forward
    # Set when the loop hands the member to a method of its class that calls it
    # (`self._score(head, x)`): `node` is that method's call, `input` what else it gets.
    helper: str | None = None


@dataclass
class MemberLoop:
    cls: ClassInfo
    method: str
    node: cst.For | cst.CompFor  # the For, or the CompFor clause
    report_node: cst.CSTNode  # where a finding points
    collection: Collection
    collection_text: str  # "self.heads", "self.ensemble[idx]"
    parent: MemberLoop | None
    index_var: str | None
    member_var: str | None
    calls: list[MemberCall] = field(default_factory=list)
    combine: Combine = field(default_factory=Combine)  # how the results are combined
    children: list[MemberLoop] = field(default_factory=list)
    # Loop variables bound to per-member pieces: `xi` in `zip(self.members, x.unbind(1))`.
    elements: dict[str, SliceInfo] = field(default_factory=dict)
    varying: frozenset[str] = frozenset()  # names that change from one member to the next
    body: tuple[cst.CSTNode, ...] = ()  # the nodes run once per member
    method_names: frozenset[str] = frozenset()  # every name the method uses
    # Every collection whose member runs once per iteration, in order of first call:
    # (collection, as written). The first is `collection`.
    collections: list[tuple[Collection, str]] = field(default_factory=list)
    # Other loop variables that are members too: `norm` in `zip(self.proj, self.norm)`.
    member_vars: dict[str, tuple[Collection, str]] = field(default_factory=dict)
    subset: str | None = None  # the loop visits part of the collection: "self.heads[: k + 1]"

    @property
    def size(self) -> str:
        return self.collection.size or "E"

    @property
    def entry_calls(self) -> list[MemberCall]:
        """The calls that start each member's computation (not those fed by another)."""
        return [call for call in self.calls if call.input != CHAIN]


# What `visited` finds: (collection, as written, the enclosing group loop, where the part
# visited starts ("start", "middle"; None for the whole), the part as written).
_Visited = tuple[Collection, str, MemberLoop | None, str | None, str | None]


@dataclass
class _Iteration:
    collection: Collection
    text: str
    parent: MemberLoop | None
    member_var: str | None = None
    index_var: str | None = None
    elements: dict[str, SliceInfo] = field(default_factory=dict)
    member_vars: dict[str, tuple[Collection, str]] = field(default_factory=dict)
    subset: str | None = None


def _member_group(collection: Collection) -> Collection | None:
    """The collection each member is, when the members are groups (GROUP members hold
    their own collection)."""
    member = collection.member
    return member.inner if member is not None and member.kind == GROUP else None


def _clauses(comprehension: cst.ListComp | cst.GeneratorExp | cst.SetComp | cst.DictComp) -> Iterator[cst.CompFor]:
    """A comprehension's `for` clauses, outermost first."""
    clause: cst.CompFor | None = comprehension.for_in
    while clause is not None:
        yield clause
        clause = clause.inner_for_in


def _sliced_tensor(node: cst.BaseExpression) -> cst.BaseExpression:
    """The tensor an index, select or narrow slice (`x[:, i]`, `x.select(1, i)`) is taken of."""
    if isinstance(node, cst.Subscript):
        return node.value
    assert isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)  # `slice_of` makes no other
    return node.func.value


class _MethodAnalysis:
    def __init__(self, cls: ClassInfo, ctx: FileContext, method: cst.FunctionDef) -> None:
        self.cls = cls
        self.ctx = ctx
        self.method = method
        self.self_name = first_param(method) or "self"
        self.index = NodeIndex.of(method.body)
        self.params = {
            p.name.value: p
            for p in [*method.params.posonly_params, *method.params.params, *method.params.kwonly_params]
        }
        self.assignments: dict[str, list[tuple[cst.CSTNode, cst.BaseExpression]]] = {}
        self.tensor_names: set[str] = set()  # names the method reads `.shape` (or the like) off
        for node in self.index.order:
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    for name in target_names(target.target):
                        self.assignments.setdefault(name, []).append((node, node.value))
            elif isinstance(node, cst.AnnAssign) and node.value is not None:
                for name in target_names(node.target):
                    self.assignments.setdefault(name, []).append((node, node.value))
            elif (
                isinstance(node, cst.Attribute)
                and isinstance(node.value, cst.Name)
                and (
                    node.attr.value in _TENSOR_ATTRIBUTES
                    or node.attr.value in _TENSOR_QUERIES
                    and isinstance(self.index.parent(node), cst.Call)
                )
            ):
                self.tensor_names.add(node.value.value)
        self.loops: list[MemberLoop] = []
        self._by_node: dict[cst.CSTNode, MemberLoop] = {}
        self._bodies: dict[cst.CSTNode, list[cst.CSTNode]] = {}
        self._assigned: dict[cst.CSTNode, set[str]] = {}

    # -- collections reached from expressions ----------------------------------------
    def collection_of(
        self, expr: cst.BaseExpression, at: cst.CSTNode
    ) -> tuple[Collection, str, MemberLoop | None] | None:
        """The collection `expr` denotes at `at`: `self.heads`, an alias, a group member."""
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == self.self_name:
            collection = self.cls.collections.get(expr.attr.value)
            if collection is not None and collection.identical:
                return collection, code_of(expr), None
            return None
        if isinstance(expr, cst.Name) and expr.value == self.self_name:
            collection = self.cls.collections.get(SELF_COLLECTION)
            if collection is not None and collection.identical:
                return collection, self.self_name, None
            return None
        if isinstance(expr, cst.Name):
            for loop in self.enclosing_loops(at):
                if loop.member_var == expr.value and (group := _member_group(loop.collection)) is not None:
                    return group, expr.value, loop
            bound = self.assignments.get(expr.value, [])
            if len(bound) == 1 and isinstance(bound[0][1], cst.Attribute):
                return self.collection_of(bound[0][1], at)
            return None
        if isinstance(expr, cst.Subscript) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
            index = expr.slice[0].slice.value
            outer = self.collection_of(expr.value, at)
            group = None if outer is None else _member_group(outer[0])
            if outer is None or group is None or not isinstance(index, cst.Name):
                return None
            for loop in self.enclosing_loops(at):
                if loop.index_var == index.value and loop.collection is outer[0]:
                    return group, code_of(expr), loop
        return None

    def enclosing_loops(self, node: cst.CSTNode) -> list[MemberLoop]:
        found: list[MemberLoop] = []
        for ancestor in self.index.ancestors(node):
            loop = self._by_node.get(ancestor)
            if loop is not None:
                found.append(loop)
            if isinstance(ancestor, COMPREHENSIONS):
                # Outer clauses of the same comprehension enclose the inner ones.
                clause: cst.CompFor | None = ancestor.for_in
                while clause is not None and clause is not node:
                    if clause in self._by_node and self._by_node[clause] not in found:
                        found.append(self._by_node[clause])
                    clause = clause.inner_for_in
        return found

    # -- iteration ------------------------------------------------------------------
    def iteration(self, target: cst.BaseExpression, iterable: cst.BaseExpression, at: cst.CSTNode) -> _Iteration | None:
        if isinstance(iterable, cst.Call):
            return self._call_iteration(target, iterable, at)
        found = self.visited(iterable, at)
        if found is not None and isinstance(target, cst.Name):
            iteration = _Iteration(*found[:3], member_var=target.value)
            iteration.subset = found[4]
            return iteration
        return None

    def _call_iteration(self, target: cst.BaseExpression, iterable: cst.Call, at: cst.CSTNode) -> _Iteration | None:
        """A loop over `enumerate(...)`, `zip(...)`, `range(...)`, `.values()` or `.items()`."""
        func = code_of(iterable.func)
        args = positional_args(iterable)
        if func == "enumerate" and len(args) >= 1 and isinstance(target, cst.Tuple) and len(target.elements) == 2:
            return self._enumerate_iteration(target, iterable, args[0], at)
        if func == "zip" and isinstance(target, cst.Tuple) and len(target.elements) == len(args):
            return self._zip_iteration(target, args, at)
        if func == "range" and len(args) == 1 and isinstance(target, cst.Name):
            bound = args[0]
            if isinstance(bound, cst.Call) and code_of(bound.func) == "len" and len(bound.args) == 1:
                found = self.collection_of(bound.args[0].value, at)
                if found is not None:
                    return _Iteration(*found, index_var=target.value)
            return self.range_iteration(target.value, code_of(bound), at)
        if isinstance(iterable.func, cst.Attribute) and iterable.func.attr.value in ("values", "items") and not args:
            found = self.collection_of(iterable.func.value, at)
            if found is None:
                return None
            if iterable.func.attr.value == "values" and isinstance(target, cst.Name):
                return _Iteration(*found, member_var=target.value)
            if (
                isinstance(target, cst.Tuple)
                and len(target.elements) == 2
                and isinstance(target.elements[1].value, cst.Name)
            ):
                return _Iteration(*found, member_var=target.elements[1].value.value)
        return None

    def _enumerate_iteration(
        self, target: cst.Tuple, iterable: cst.Call, visited: cst.BaseExpression, at: cst.CSTNode
    ) -> _Iteration | None:
        """`for i, m in enumerate(self.heads)`: `i` is the member's index when it counts from 0."""
        found = self.visited(visited, at)
        index, member = (element.value for element in target.elements)
        if found is None or not isinstance(member, cst.Name):
            return None
        # With a `start`, or over a part not starting at 0, the counter is not the member's index.
        counts_from_zero = len(iterable.args) == 1 and found[3] in (None, "start")
        index_var = index.value if isinstance(index, cst.Name) and counts_from_zero else None
        iteration = _Iteration(*found[:3], member_var=member.value, index_var=index_var)
        iteration.subset = found[4]
        return iteration

    def _zip_iteration(self, target: cst.Tuple, args: list[cst.BaseExpression], at: cst.CSTNode) -> _Iteration | None:
        """Each zipped iterable is read like a loop of its own: the members (or their
        index) come from one or more, per-member pieces of a tensor from others."""
        iteration = None
        elements: dict[str, SliceInfo] = {}
        others: dict[str, tuple[Collection, str]] = {}
        for element, arg in zip(target.elements, args, strict=True):  # as many targets as iterables
            found = self.iteration(element.value, arg, at)
            if found is not None and iteration is None:
                iteration = found
                continue
            if found is not None and found.member_var is not None and found.parent is None:
                others[found.member_var] = (found.collection, found.text)
                continue
            if isinstance(element.value, cst.Name):
                split = self.split_of(arg)
                if split is not None:
                    elements[element.value.value] = split
        if iteration is not None:
            iteration.elements.update(elements)
            iteration.member_vars.update(others)
        return iteration

    def visited(self, iterable: cst.BaseExpression, at: cst.CSTNode) -> _Visited | None:
        """(collection, text, parent, where the part starts, the part as written) for a
        collection or a part of it (`self.heads[:k]`), else None."""
        if (
            isinstance(iterable, cst.Subscript)
            and len(iterable.slice) == 1
            and isinstance(iterable.slice[0].slice, cst.Slice)
        ):
            part = iterable.slice[0].slice
            found = self.collection_of(iterable.value, at)
            if found is None or part.step is not None:
                return None
            starts_at_zero = part.lower is None or code_of(part.lower) == "0"
            return (*found, "start" if starts_at_zero else "middle", code_of(iterable))
        found = self.collection_of(iterable, at)
        return None if found is None else (*found, None, None)

    def range_iteration(self, index_var: str, bound: str, at: cst.CSTNode) -> _Iteration | None:
        """`for i in range(...)` is a member loop when its body indexes an identical
        collection with `i` (`self.heads[i]`), or when `...` is the size of one."""
        # What runs once per value of `i`: the loop's body, or the comprehension's element.
        if isinstance(at, cst.For):
            nodes = list(self.index.descendants(at.body))
        else:
            comprehension = next((a for a in self.index.ancestors(at) if isinstance(a, COMPREHENSIONS)), None)
            root: cst.BaseExpression | None
            if comprehension is None:
                root = None
            elif isinstance(comprehension, cst.DictComp):
                root = comprehension.value
            else:
                root = comprehension.elt
            nodes = [] if root is None else list(walk(root))
        indexed: list[tuple[Collection, str, MemberLoop | None]] = []
        for node in nodes:
            if (
                not isinstance(node, cst.Subscript)
                or len(node.slice) != 1
                or not isinstance(node.slice[0].slice, cst.Index)
            ):
                continue
            index = node.slice[0].slice.value
            if isinstance(index, cst.Name) and index.value == index_var:
                found = self.collection_of(node.value, at)
                if found is not None and found[2] is None and all(found[0] is not f[0] for f in indexed):
                    indexed.append(found)
        if indexed:
            return _Iteration(*indexed[0], index_var=index_var)
        sizes = {bound}
        if bound.startswith(self.self_name + "."):
            attr = bound[len(self.self_name) + 1 :]
            if attr in self.cls.size_attrs:
                sizes.add(self.cls.size_attrs[attr])
        for name, collection in self.cls.collections.items():
            if not collection.identical or collection.size is None:
                continue
            own = {collection.size, f"{self.self_name}.{collection.size}"}
            own |= {f"{self.self_name}.{a}" for a, v in self.cls.size_attrs.items() if v == collection.size}
            if sizes & own:
                return _Iteration(collection, f"{self.self_name}.{name}", None, index_var=index_var)
        return None

    # -- slices ---------------------------------------------------------------------
    def split_of(self, expr: cst.BaseExpression) -> SliceInfo | None:
        """`x.unbind(1)`, `torch.unbind(x, 1)`, `x.chunk(n, 1)`, `tensor_split(x, n, dim=1)`:
        per-member pieces of x."""
        if isinstance(expr, cst.Name):
            bound = self.assignments.get(expr.value, [])
            return self.split_of(bound[0][1]) if len(bound) == 1 else None
        if not isinstance(expr, cst.Call):
            return None
        args = positional_args(expr)
        dim_kw = next((a.value for a in expr.args if a.keyword is not None and a.keyword.value == "dim"), None)
        qualified = self.ctx.imports.qualify(expr.func)
        if isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _SPLITTERS:
            method = expr.func.attr.value
        elif (
            isinstance(expr.func, cst.Name)
            and qualified
            and qualified.split(".")[-1] in _SPLITTERS
            and qualified.startswith("torch.")
        ):
            method = qualified.split(".")[-1]
        else:
            return None
        if qualified and qualified.startswith("torch."):
            if not args:
                return None
            tensor, rest = args[0], args[1:]
        else:
            assert isinstance(expr.func, cst.Attribute)  # `torch.<splitter>` is the only other form
            tensor, rest = expr.func.value, args
        # unbind takes the dimension first, the others the count (or sizes) first.
        position = 0 if method == "unbind" else 1
        dim = rest[position] if len(rest) > position else dim_kw
        dim_text = "0" if dim is None else code_of(dim)
        via = _SPLITTERS[method]
        return SliceInfo(code_of(tensor), dim_text, via, self.is_activation(tensor), f"{code_of(expr)}[i]")

    def _is_index(self, position: cst.BaseSlice, index_var: str) -> str | None:
        """ "index" for `i`, "narrow" for `i:i + 1`, at one position of a subscript."""
        if (
            isinstance(position, cst.Index)
            and isinstance(position.value, cst.Name)
            and position.value.value == index_var
        ):
            return "index"
        if (
            isinstance(position, cst.Slice)
            and position.step is None
            and isinstance(position.lower, cst.Name)
            and position.lower.value == index_var
        ):
            upper = position.upper
            if isinstance(upper, cst.BinaryOperation) and isinstance(upper.operator, cst.Add):
                pair = {code_of(upper.left), code_of(upper.right)}
                if pair == {index_var, "1"}:
                    return "narrow"
        return None

    def slice_of(
        self, expr: cst.BaseExpression, loop: MemberLoop, elements: dict[str, SliceInfo], depth: int = 0
    ) -> SliceInfo | None:
        """How `expr` is slice `i` of one tensor, `i` being the loop's member index."""
        if depth > 3:
            return None
        index_var = loop.index_var
        if isinstance(expr, cst.Name):
            if expr.value in elements:
                return elements[expr.value]
            inside = [
                v
                for n, v in self.assignments.get(expr.value, [])
                if self.index.is_inside(n, loop.node) or n is loop.node
            ]
            if len(inside) == 1:
                return self.slice_of(inside[0], loop, elements, depth + 1)
            return None
        if index_var is None:
            return None
        if (
            isinstance(expr, cst.Call)
            and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value in _SHAPE_METHODS
            and not any(names_in(a.value) & {index_var} for a in expr.args)
        ):
            # `x[:, i].unsqueeze(1)`: a reshaped slice is still member i's slice.
            return self.slice_of(expr.func.value, loop, elements, depth + 1)
        if isinstance(expr, cst.Subscript):
            return self._subscript_slice(expr, loop, index_var)
        if (
            isinstance(expr, cst.Call)
            and isinstance(expr.func, cst.Attribute)
            and expr.func.attr.value in ("select", "narrow")
        ):
            return self._method_slice(expr, expr.func, index_var)
        return None

    def _subscript_slice(self, expr: cst.Subscript, loop: MemberLoop, index_var: str) -> SliceInfo | None:
        """`x[:, i]`, `x[..., i]`, `x[:, i:i + 1]`: `i` at one position, whole dimensions at the others."""
        positions = [element.slice for element in expr.slice]
        hits = [(i, kind) for i, p in enumerate(positions) if (kind := self._is_index(p, index_var))]
        if len(hits) != 1 or index_var in names_in(expr.value):
            return None
        hit, via = hits[0]
        for i, p in enumerate(positions):
            if i == hit:
                continue
            full = isinstance(p, cst.Slice) and p.lower is None and p.upper is None and p.step is None
            if not (full or (isinstance(p, cst.Index) and isinstance(p.value, cst.Ellipsis))):
                return None
        split = self.split_of(expr.value)
        if split is not None and len(positions) == 1 and via == "index":
            split.text = code_of(expr)
            return split
        ellipsis = [
            i for i, p in enumerate(positions) if isinstance(p, cst.Index) and isinstance(p.value, cst.Ellipsis)
        ]
        dim = str(hit - len(positions)) if ellipsis and ellipsis[0] < hit else str(hit)
        if len(positions) == 1 and via == "index" and not self.is_tensor(expr.value, loop):
            # `feats[i]` may index a Python list of differently shaped tensors.
            return None
        return SliceInfo(code_of(expr.value), dim, via, self.is_activation(expr.value), code_of(expr), expr)

    def _method_slice(self, expr: cst.Call, func: cst.Attribute, index_var: str) -> SliceInfo | None:
        """`x.select(dim, i)` or `x.narrow(dim, i, 1)` (`func` is `expr`'s `x.select`)."""
        args = positional_args(expr)
        if self.ctx.imports.qualify(func) in ("torch.select", "torch.narrow"):
            return None
        tensor = func.value
        if (
            func.attr.value == "select"
            and len(args) == 2
            and isinstance(args[1], cst.Name)
            and args[1].value == index_var
        ):
            return SliceInfo(
                code_of(tensor), code_of(args[0]), "select", self.is_activation(tensor), code_of(expr), expr
            )
        if (
            func.attr.value == "narrow"
            and len(args) == 3
            and isinstance(args[1], cst.Name)
            and args[1].value == index_var
            and code_of(args[2]) == "1"
        ):
            return SliceInfo(
                code_of(tensor), code_of(args[0]), "narrow", self.is_activation(tensor), code_of(expr), expr
            )
        return None

    def is_tensor(self, expr: cst.BaseExpression, loop: MemberLoop | None = None) -> bool:
        if isinstance(expr, cst.Call):
            qualified = self.ctx.imports.qualify(expr.func) or ""
            if qualified.startswith("torch."):
                return True
            return isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _TENSOR_METHODS
        if isinstance(expr, cst.Name):
            if expr.value in self.tensor_names:
                return True  # `x.shape`, `x.size(0)`: a list has neither
            if (
                loop is not None
                and isinstance(loop.node, (cst.For, cst.CompFor))
                and self._ranges_over_leading_dim(loop.node.iter, expr.value)
            ):
                return True
            param = self.params.get(expr.value)
            if param is not None and param.annotation is not None:
                annotation = code_of(param.annotation.annotation)
                return (
                    annotation in ("Tensor", "torch.Tensor")
                    or self.ctx.imports.qualify(param.annotation.annotation) == "torch.Tensor"
                )
            bound = self.assignments.get(expr.value, [])
            return bool(bound) and all(self.is_tensor(v) for _, v in bound)
        return False

    def _ranges_over_leading_dim(self, iterable: cst.BaseExpression, name: str) -> bool:
        """`range(x.shape[0])` or `range(x.size(0))`."""
        if not (isinstance(iterable, cst.Call) and code_of(iterable.func) == "range" and len(iterable.args) == 1):
            return False
        text = code_of(iterable.args[0].value).replace(" ", "")
        return text in (f"{name}.shape[0]", f"{name}.size(0)")

    def is_activation(self, expr: cst.BaseExpression, seen: frozenset[str] = frozenset()) -> bool:
        """Computed inside the module, so backward must produce its gradient."""
        if isinstance(expr, cst.Name):
            if expr.value in seen:
                return False
            return any(self.is_activation(v, seen | {expr.value}) for _, v in self.assignments.get(expr.value, []))
        for node in walk(expr):
            if isinstance(node, cst.Call):
                func = node.func
                base = func
                while isinstance(base, cst.Attribute):
                    if isinstance(base.value, cst.Name) and base.value.value == self.self_name:
                        return True  # a submodule (or a method of this module)
                    base = base.value
                qualified = self.ctx.imports.qualify(func) or ""
                if (
                    qualified.startswith("torch.")
                    and qualified not in _CREATION
                    and any(self.is_activation(a.value, seen) for a in node.args)
                ):
                    return True
            if (
                isinstance(node, cst.Name)
                and node is not expr
                and node.value in self.assignments
                and node.value not in seen
                and self.is_activation(node, seen)
            ):
                return True
        return False

    # -- the pass -------------------------------------------------------------------
    def run(self) -> list[MemberLoop]:
        for node in self.index.order:
            if isinstance(node, cst.For):
                self.add_loop(node, node.target, node.iter, node)
            elif isinstance(node, COMPREHENSIONS):
                # The first clause reports at the whole comprehension, the others at themselves.
                for clause in _clauses(node):
                    self.add_loop(clause, clause.target, clause.iter, node if clause is node.for_in else clause)
        method_names = frozenset(names_in(self.method))
        for loop in self.loops:
            loop.varying = frozenset(self.assigned_in(loop))
            loop.body = tuple(self.body_nodes(loop))
            loop.method_names = method_names
            self.find_calls(loop)
        # A group's members are called through the loops over each group.
        for loop in reversed(self.loops):
            if loop.parent is not None:
                loop.parent.children.append(loop)
        for loop in self.loops:
            if _member_group(loop.collection) is not None:
                for child in loop.children:
                    for call in child.calls:
                        loop.calls.append(
                            self.classify(call.node, loop, call.collection, call.collection_text, call.method)
                        )
            loop.combine = combine_at(self.span_of(loop), self.ctx.imports, self.combine_of(loop))
        return self.loops

    def add_loop(
        self,
        node: cst.For | cst.CompFor,
        target: cst.BaseExpression,
        iterable: cst.BaseExpression,
        report: cst.CSTNode,
    ) -> None:
        iteration = self.iteration(target, iterable, node)
        if iteration is None:
            return
        loop = MemberLoop(
            self.cls,
            self.method.name.value,
            node,
            report,
            iteration.collection,
            iteration.text,
            iteration.parent,
            iteration.index_var,
            iteration.member_var,
        )
        loop.elements = iteration.elements
        loop.member_vars = iteration.member_vars
        loop.subset = iteration.subset
        self.loops.append(loop)
        self._by_node[node] = loop

    def body_nodes(self, loop: MemberLoop) -> list[cst.CSTNode]:
        """The nodes a loop runs once per member."""
        if loop.node not in self._bodies:
            self._bodies[loop.node] = self._body_nodes(loop)
        return self._bodies[loop.node]

    def _body_nodes(self, loop: MemberLoop) -> list[cst.CSTNode]:
        node = loop.node
        if isinstance(node, cst.For):
            return list(self.index.descendants(node.body))
        comprehension = next(a for a in self.index.ancestors(node) if isinstance(a, COMPREHENSIONS))
        roots: list[cst.CSTNode] = []
        if isinstance(comprehension, cst.DictComp):
            roots += [comprehension.key, comprehension.value]
        else:
            roots.append(comprehension.elt)
        roots += [i for i in node.ifs]
        if node.inner_for_in is not None:
            roots.append(node.inner_for_in)
        nodes: list[cst.CSTNode] = []
        for root in roots:
            nodes.append(root)
            nodes.extend(self.index.descendants(root))
        return nodes

    def member_callee(self, func: cst.BaseExpression, loop: MemberLoop) -> tuple[Collection, str, str | None] | None:
        """(collection, as written, method) when `func` calls a member of the loop:
        `m`, `m.forward`, `m.predict_proba`, `self.heads[i]`, `norm` from a zip."""
        method = None
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            func = func.value
        found = None
        if isinstance(func, cst.Name):
            if func.value == loop.member_var:
                found = (loop.collection, loop.collection_text)
            elif func.value in loop.member_vars:
                found = loop.member_vars[func.value]
            elif func.value in loop.varying:
                found = self._alias(func.value, loop)
        elif isinstance(func, cst.Subscript) and len(func.slice) == 1 and isinstance(func.slice[0].slice, cst.Index):
            index = func.slice[0].slice.value
            if isinstance(index, cst.Name) and index.value == loop.index_var and loop.index_var is not None:
                collection = self.collection_of(func.value, loop.node)
                if collection is not None and (collection[2] is None or collection[0] is loop.collection):
                    found = (collection[0], collection[1])
        if found is None:
            return None
        if method is None or method == "forward":
            return (*found, None)
        return (*found, method) if self._computes(found[0], method) else None

    def _alias(self, name: str, loop: MemberLoop) -> tuple[Collection, str] | None:
        """`head = self.heads[i]` in the loop body: `head` is member `i`."""
        bound = [v for n, v in self.assignments.get(name, []) if self.index.is_inside(n, loop.node)]
        if len(bound) != 1 or not isinstance(bound[0], cst.Subscript):
            return None
        value = bound[0]
        if len(value.slice) != 1 or not isinstance(value.slice[0].slice, cst.Index):
            return None
        index = value.slice[0].slice.value
        if not (isinstance(index, cst.Name) and index.value == loop.index_var):
            return None
        found = self.collection_of(value.value, loop.node)
        return None if found is None or found[2] is not None else (found[0], found[1])

    def _computes(self, collection: Collection, method: str) -> bool:
        """Whether `member.<method>(...)` is a computation worth batching: a method the
        member's class defines (when it can be read), never nn.Module's own API."""
        member = collection.member
        if method in _MODULE_API or method.startswith("_") or member is None or member.kind == GROUP:
            return False
        if member.cls is not None:
            return find_method(member.cls, self.ctx, method) is not None
        if member.qualified is not None and self.ctx.project is not None and self.ctx.path is not None:
            return self.ctx.project.defines_method(member.qualified, self.ctx.path, method) is not False
        return True

    def find_calls(self, loop: MemberLoop) -> None:
        nested = [n for n in self.body_nodes(loop) if isinstance(n, cst.Call)]
        for node in nested:
            found = self.member_callee(node.func, loop)
            if found is not None:
                loop.calls.append(self.classify(node, loop, *found))
            else:
                through = self._helper_call(node, loop)
                if through is not None:
                    loop.calls.append(through)
        for call in loop.calls:
            if call.collection is not None and all(call.collection is not c for c, _ in loop.collections):
                loop.collections.append((call.collection, call.collection_text))
        if not loop.collections:
            loop.collections.append((loop.collection, loop.collection_text))
        elif all(loop.collection is not c for c, _ in loop.collections) and loop.index_var is None:
            loop.collections.insert(0, (loop.collection, loop.collection_text))
        if loop.collections[0][0] is not loop.collection:
            # `for i in range(n)` found by its first indexed collection; the first called is primary.
            loop.collection, loop.collection_text = loop.collections[0]

    def _helper_call(self, node: cst.Call, loop: MemberLoop) -> MemberCall | None:
        """`self._score(head, x)`: the member handed, as a plain positional argument, to a
        method of the class that only calls it (`head(x)`). It is the member call, on what
        the method gets besides the member."""
        func = node.func
        if not (
            loop.member_var is not None
            and isinstance(func, cst.Attribute)
            and isinstance(func.value, cst.Name)
            and func.value.value == self.self_name
        ):
            return None
        method = self.cls.methods.get(func.attr.value)
        handed = [
            i
            for i, arg in enumerate(node.args)
            if isinstance(arg.value, cst.Name) and arg.value.value == loop.member_var
        ]
        if method is None or len(handed) != 1 or any(a.star or a.keyword for a in node.args[: handed[0] + 1]):
            return None
        if any(code_of(d.decorator) in ("staticmethod", "classmethod") for d in method.decorators):
            return None
        params = [*method.params.posonly_params, *method.params.params][1:]  # after self
        # Only ever called, and at least once; not through `.forward`: the rewrites hand the
        # method a function that runs the member, and leave the method as it is.
        name = params[handed[0]].name.value if handed[0] < len(params) else None
        if name is None or not calls_of(NodeIndex.of(method), [method], name, through_forward=False, skip_params=True):
            return None
        rest = node.with_changes(args=[a for i, a in enumerate(node.args) if i != handed[0]])
        call = self.classify(rest, loop, loop.collection, loop.collection_text)
        return replace(call, node=node, helper=func.attr.value)

    def assigned_in(self, loop: MemberLoop) -> set[str]:
        """Names that change from one member to the next: loop targets and names bound
        inside the body."""
        if loop.node not in self._assigned:
            self._assigned[loop.node] = self._assigned_in(loop)
        return self._assigned[loop.node]

    def _assigned_in(self, loop: MemberLoop) -> set[str]:
        names = set(target_names(loop.node.target))
        for node in self.body_nodes(loop):
            if isinstance(node, (cst.AssignTarget, cst.AugAssign, cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr)):
                names |= set(target_names(node.target))
        return names

    # -- inputs -----------------------------------------------------------------------
    def classify(
        self,
        call: cst.Call,
        loop: MemberLoop,
        collection: Collection | None = None,
        collection_text: str = "",
        method: str | None = None,
    ) -> MemberCall:
        def made(kind: str, text: str, sliced: SliceInfo | None = None) -> MemberCall:
            return MemberCall(call, kind, text, sliced, collection, collection_text, method)

        if not call.args:
            return made(OTHER, "")
        text = ", ".join(
            ("*" * len(arg.star)) + (f"{arg.keyword.value}=" if arg.keyword else "") + code_of(arg.value)
            for arg in call.args
        )
        first = call.args[0].value
        elements = loop.elements
        varying = self.assigned_in(loop)
        extras = [a.value for a in call.args[1:]]
        sliced = None if call.args[0].star else self.slice_of(first, loop, elements)
        if sliced is not None and sliced.node is not None:
            tensor = _sliced_tensor(sliced.node)
            if names_in(tensor) & varying:
                return made(OTHER, text)  # not one tensor: it changes per member
        if sliced is not None:
            # Extra arguments are shared by all members or sliced the same way
            # (`m(x[:, i], mask[:, i])`); anything else is not one batched call.
            for extra in extras:
                if names_in(extra) & varying and self.slice_of(extra, loop, elements) is None:
                    return made(OTHER, text)
            return made(SLICE, text, sliced)
        if names_in(first) & varying and self.fed_by_member(first, call, loop):
            for extra in extras:
                if names_in(extra) & varying and not self.fed_by_member(extra, call, loop):
                    return made(OTHER, text)
            return made(CHAIN, text)
        if any(names_in(e) & varying for e in [first, *extras]):
            return made(OTHER, text)
        return made(SAME, text)

    def fed_by_member(self, expr: cst.BaseExpression, before: cst.CSTNode, loop: MemberLoop, depth: int = 0) -> bool:
        """Whether `expr` is computed, in this iteration and before `before`, from another
        member call (`z = self.proj[i](x[:, i]); z = self.norm[i](z)`), every name it
        reads that changes per member being bound so. A name carried over from the
        previous iteration (`h = h + block(h)`) is not."""
        if depth > 6:
            return False
        calls = [
            node
            for node in walk(expr)
            if isinstance(node, cst.Call) and node is not before and self.member_callee(node.func, loop) is not None
        ]
        # What a member call reads is that call's own business.
        skip = {id(inner) for call in calls for inner in walk(call)}
        fed = bool(calls)
        for node in walk(expr):
            if id(node) in skip or not isinstance(node, cst.Name) or node.value not in loop.varying:
                continue
            binding = self._binding_before(node.value, before, loop)
            if binding is None or not self.fed_by_member(binding[1], binding[0], loop, depth + 1):
                return False
            fed = True
        return fed

    def _binding_before(
        self, name: str, before: cst.CSTNode, loop: MemberLoop
    ) -> tuple[cst.CSTNode, cst.BaseExpression] | None:
        """The last assignment of `name` in the loop body that runs before `before`."""
        found = None
        for node, value in self.assignments.get(name, []):
            if not self.index.is_inside(node, loop.node):
                continue
            if not self.index.before(node, before) or self.index.is_inside(before, node) or node is before:
                continue
            if found is None or self.index.before(found[0], node):
                found = (node, value)
        return found

    # -- combining ------------------------------------------------------------------
    def span_of(self, loop: MemberLoop) -> LoopSpan | None:
        """What finding the loop's combine site reads, for a loop of one member call."""
        if len(loop.calls) != 1:
            return None
        call = loop.calls[0]
        read = call.slice.tensor if call.slice is not None else None
        if read is None and call.node.args:
            read = code_of(call.node.args[0].value)
        return LoopSpan(self.method, loop.node, loop.report_node, call.node, loop.collection_text, loop.index_var, read)

    def combine_of(self, loop: MemberLoop) -> str | None:
        if isinstance(loop.node, cst.CompFor):
            comprehension = next(a for a in self.index.ancestors(loop.node) if isinstance(a, COMPREHENSIONS))
            return self.combine_of_value(comprehension)
        body = set(self.body_nodes(loop))
        calls = loop.calls
        if _member_group(loop.collection) is not None:
            # The group loop combines the per-group results it collects itself.
            for node in body:
                if (
                    isinstance(node, cst.Call)
                    and isinstance(node.func, cst.Attribute)
                    and node.func.attr.value == "append"
                    and not any(self.index.is_inside(node, child.node) for child in loop.children)
                ):
                    found = self.combine_of_list(node.func.value, loop)
                    if found:
                        return found
            return next((child.combine.text for child in loop.children if child.combine.text), None)
        for call in reversed(calls):
            found = self.flow(call.node, loop, body, depth=0)
            if found:
                return found
        return None

    def flow(self, node: cst.CSTNode, loop: MemberLoop, body: set[cst.CSTNode], depth: int) -> str | None:
        """Where the value of `node` (a member call, or a name holding its result) ends up
        in the iteration: appended to a list, summed, written by index, or passed on
        through more steps (`h = head(x); logits = self.lm_head(h); out.append(logits)`)."""
        if depth > 5:
            return None
        statement = node
        for ancestor in self.index.ancestors(node):
            if (
                isinstance(ancestor, cst.Call)
                and ancestor is not node
                and depth < 5
                and self.member_callee(ancestor.func, loop) is not None
                and any(node is a.value for a in ancestor.args)
            ):
                return self.flow(ancestor, loop, body, depth + 1)  # fed into the next member
            if isinstance(ancestor, (cst.Expr, cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Return)):
                statement = ancestor
                break
        else:
            return None
        if statement not in body:
            return None
        if isinstance(statement, cst.Expr) and isinstance(statement.value, cst.Call):
            func = statement.value.func
            if isinstance(func, cst.Attribute) and func.attr.value in ("append", "extend"):
                return self.combine_of_list(func.value, loop)
            return None
        if isinstance(statement, cst.AugAssign):
            return "summed" if isinstance(statement.operator, cst.AddAssign) else None
        if isinstance(statement, cst.Assign) and len(statement.targets) == 1:
            return self._flow_of_assign(statement, loop, body, depth)
        return None

    def _flow_of_assign(
        self, statement: cst.Assign, loop: MemberLoop, body: set[cst.CSTNode], depth: int
    ) -> str | None:
        """`flow` past `target = <value>`: written by index, summed (`total = total + m(x)`),
        or wherever the target name is used next in the iteration."""
        target = statement.targets[0].target
        if isinstance(target, cst.Subscript) and loop.index_var is not None and loop.index_var in names_in(target):
            return "written into a preallocated tensor by index"
        names = target_names(target)
        value = statement.value
        if (
            isinstance(target, cst.Name)
            and isinstance(value, cst.BinaryOperation)
            and isinstance(value.operator, cst.Add)
            and target.value in names_in(value)
        ):
            return "summed"
        for name in names:
            # Follow the name to where it is used next in the iteration.
            for other in self.index.order:
                if (
                    isinstance(other, cst.Name)
                    and other.value == name
                    and other in body
                    and self.index.before(statement, other)
                    and not self.index.is_inside(other, statement)
                    and not isinstance(self.index.parent(other), cst.AssignTarget)
                ):
                    found = self.flow(other, loop, body, depth + 1)
                    if found:
                        return found
        return None

    def combine_of_list(self, holder: cst.BaseExpression, loop: MemberLoop) -> str | None:
        if not isinstance(holder, cst.Name):
            return None
        name = holder.value
        for node in self.index.order:
            if (
                isinstance(node, cst.Name)
                and node.value == name
                and not self.index.is_inside(node, loop.node)
                and self.index.before(loop.node, node)
            ):
                parent = self.index.parent(node)
                if isinstance(parent, cst.Return):
                    return "returned as a list"
                if isinstance(parent, cst.Arg):
                    call = self.index.parent(parent)
                    found = self.combine_of_value(node) if isinstance(call, cst.Call) else None
                    if found:
                        return found
                if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
                    return "combined in a later loop"
        return None

    def combine_of_value(self, value: cst.CSTNode) -> str | None:
        """What happens to a list of member results (a comprehension or a list name)."""
        node = value
        result: str | None = None
        for _ in range(4):
            parent = self.index.parent(node)
            if isinstance(parent, cst.Arg):
                parent = self.index.parent(parent)
            if isinstance(parent, cst.Call) and parent.func is not node:
                qualified = self.ctx.imports.qualify(parent.func) or code_of(parent.func)
                kind = _COMBINERS.get(qualified)
                if kind is None:
                    if result is None and code_of(parent.func) not in _NOT_COMBINERS:
                        return f"passed to `{code_of(parent.func)}`"
                    return result
                result = kind
                grand = self.index.parent(parent)
                if kind in ("stacked", "summed") and isinstance(grand, cst.Attribute) and grand.attr.value == "mean":
                    return "averaged"
                if kind not in ("returned as a tuple", "returned as a list"):
                    return result
                node = parent
                continue
            if isinstance(parent, cst.Return):
                return result or ("returned as a list" if isinstance(value, (cst.ListComp, cst.Name)) else None)
            if (
                isinstance(parent, cst.Assign)
                and len(parent.targets) == 1
                and isinstance(parent.targets[0].target, cst.Name)
            ):
                stand_in = parent.targets[0].target
                for other in self.index.order:
                    if (
                        isinstance(other, cst.Name)
                        and other.value == stand_in.value
                        and other is not stand_in
                        and self.index.before(parent, other)
                    ):
                        found = self.combine_of_value(other)
                        if found:
                            return found
                        grand = self.index.parent(other)
                        if isinstance(grand, (cst.For, cst.CompFor)) and grand.iter is other:
                            return "combined in a later loop"
                return result
            return result
        return result


def find_member_loops(cls: ClassInfo, ctx: FileContext) -> list[MemberLoop]:
    loops: list[MemberLoop] = []
    for method in cls.methods.values():
        loops.extend(_MethodAnalysis(cls, ctx, method).run())
    return loops
