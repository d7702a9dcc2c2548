"""Why a finding gets no fused rewrite, when the reason is the shape of the code around
the loop rather than the members themselves.

The rewrites replace the statement that builds a collection and the loop that runs it,
in one class of one file, and add a checkpoint hook to that class. Each reason below
breaks one of those assumptions; the finding's message gives the first that applies, so
that "no automatic fix" always says what really stands in the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from enslint.analysis.syntax import code_of

if TYPE_CHECKING:
    from enslint.analysis.loops import MemberLoop
    from enslint.analysis.model import FileModel


def fused_blocker(loop: MemberLoop, model: FileModel, general: bool = False) -> str | None:
    """The first reason no fused rewrite applies, or None. With `general`, for the vmap
    form, which stacks whatever members the code built: members passed in (when the
    project's call sites show them identical) or built by a helper are then no obstacle,
    as the members themselves are kept, only stacked after they are built."""
    collection = loop.collection
    text = loop.collection_text
    cls = loop.cls
    if cls.is_module is False:
        return f"`{cls.name}` is not an nn.Module, so it cannot hold the fused parameters and their checkpoint hook"
    if cls.is_module is None:
        return f"the base class of `{cls.name}` could not be read, so it is not known to be an nn.Module"
    if len(loop.collections) > 1:
        names = ", ".join(f"`{t}`" for _, t in loop.collections)
        return f"the loop runs {len(loop.collections)} collections per member ({names})"
    methods = sorted({call.method for call in loop.calls if call.method})
    if methods:
        return f"the members are called through `.{methods[0]}()`"
    if collection.passed_in is not None and not general:
        return "the members are passed in by the caller"
    if collection.inherited_from:
        return f"`{text}` is built in the parent class `{collection.inherited_from}`"
    if collection.evidence and not general:
        return f"`{text}` is {model.render(collection.evidence)}"
    if collection.method not in (None, "__init__"):
        return f"`{text}` is built in `{collection.method}()`, not in `__init__`"
    if loop.subset:
        return f"the loop visits only part of the collection (`{loop.subset}`)"
    if any(arg.star for call in loop.calls for arg in call.node.args):
        return "the members are called with unpacked arguments (`*args`)"
    if collection.container.startswith("list +"):
        how = collection.container.split("+ ", 1)[1]
        return f"`{text}` is a plain list registered with `{how}`; the rewrites replace an nn.ModuleList"
    for call in loop.entry_calls:
        info = call.slice
        if info is None or info.node is None:
            continue
        if call.node.args and info.node is not call.node.args[0].value:
            return f"each member's slice is reshaped before the call (`{code_of(call.node.args[0].value)}`)"
    return None
