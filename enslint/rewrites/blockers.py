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
from enslint.rewrites.reasons import Reason, Rejection, reject

if TYPE_CHECKING:
    from enslint.analysis.loops import MemberLoop
    from enslint.analysis.model import FileModel


def fused_blocker(loop: MemberLoop, model: FileModel, general: bool = False) -> Rejection | None:
    """The first reason no fused rewrite applies, or None. With `general`, for the vmap
    form, which stacks whatever members the code built: members passed in (when the
    project's call sites show them identical) or built by a helper are then no obstacle,
    as the members themselves are kept, only stacked after they are built."""
    collection = loop.collection
    text = loop.collection_text
    cls = loop.cls
    if cls.is_module is False:
        return reject(Reason.NOT_A_MODULE, cls=cls.name)
    if cls.is_module is None:
        return reject(Reason.BASE_UNREAD, cls=cls.name)
    if len(loop.collections) > 1:
        names = ", ".join(f"`{t}`" for _, t in loop.collections)
        return reject(Reason.SEVERAL_COLLECTIONS, count=len(loop.collections), names=names)
    methods = sorted({call.method for call in loop.calls if call.method})
    if methods:
        return reject(Reason.CALLED_THROUGH_METHOD, method=methods[0])
    helpers = sorted({call.helper for call in loop.calls if call.helper})
    if helpers and not general:
        return reject(Reason.CALLED_IN_HELPER, helper=helpers[0])
    built = _where_built(loop, model, general)
    if built is not None:
        return built
    if loop.subset:
        return reject(Reason.PART_OF_COLLECTION, subset=loop.subset)
    if any(arg.star for call in loop.calls for arg in call.node.args):
        return reject(Reason.UNPACKED_ARGUMENTS)
    if collection.container.startswith("list +"):
        how = collection.container.split("+ ", 1)[1]
        return reject(Reason.PLAIN_LIST, collection=text, how=how)
    for call in loop.entry_calls:
        info = call.slice
        if info is None or info.node is None:
            continue
        if call.node.args and info.node is not call.node.args[0].value:
            return reject(Reason.RESHAPED_SLICE, code=code_of(call.node.args[0].value))
    return None


def _where_built(loop: MemberLoop, model: FileModel, general: bool) -> Rejection | None:
    """What stands in the way in where and how the collection is built."""
    collection = loop.collection
    text = loop.collection_text
    if collection.passed_in is not None and not general:
        return reject(Reason.PASSED_IN)
    if collection.inherited_from:
        return reject(Reason.BUILT_IN_PARENT, collection=text, parent=collection.inherited_from)
    if collection.evidence and not general:
        return reject(Reason.BUILT_ELSEWHERE, collection=text, evidence=model.render(collection.evidence))
    if collection.runtime is not None and not general:
        return reject(Reason.PROVEN_AT_RUN_TIME, collection=text)
    if collection.per_branch:
        return reject(Reason.BUILT_PER_BRANCH, collection=text)
    if collection.method not in (None, "__init__"):
        return reject(Reason.BUILT_OUTSIDE_INIT, collection=text, method=collection.method)
    return None
