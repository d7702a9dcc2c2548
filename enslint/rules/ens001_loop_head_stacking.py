from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from enslint.analysis.kinds import SAME, SLICE
from enslint.rewrites.registry import same_input_offer
from enslint.rules.base import Finding, Invalid, Rule, Settings, Valid
from enslint.rules.describe import (
    NO_FIX,
    advised_kind,
    count_of,
    fused_for_several,
    fused_on_same_input,
    group_member,
    headline,
    member_kind,
    member_of,
    members_phrase,
    nest_phrase,
    remedy,
    shared_advice,
    where,
)

if TYPE_CHECKING:
    from enslint.analysis.context import Member
    from enslint.analysis.loops import MemberLoop
    from enslint.analysis.model import FileModel


def _inputs(arguments: str) -> str:
    return f"inputs `({arguments})`" if "," in arguments else f"input `{arguments}`"


class LoopHeadStacking(Rule):
    code = "ENS001"
    name = "loop-head-stacking"
    summary = "Identical members called one by one on the same input, results combined"

    what_it_does = """\
Flags a loop (a `for` statement, a comprehension, or `tuple(...)`/`list(...)` of a
generator) that calls every member of one collection of identical modules on the *same*
input and combines the results: `torch.stack`, `torch.cat`, `sum(...)`,
`torch.stack(...).mean(0)`, a returned list or tuple, a list appended to and then
stacked, passed to a helper (`average(outs)`) or iterated, or a preallocated tensor
written by index; the result may pass through more steps first (`h = head(x); logits =
self.lm_head(h); outs.append(logits)`). Members count as identical only when the code
shows it: one constructor repeated by a comprehension or a loop that does not read its
loop variable, `copy.deepcopy(layer)` in such a loop, or a factory, helper (`clones(layer,
n)`, also from another file) or class called the same way each time; members handed to
`__init__` (`nn.ModuleList(models)`) count when a call site in the project builds them
so. Any method counts, not only `forward`, and so do `member.forward(x)`, a method the
member's class defines (`q.expected_value(obs, act)`), `member(*x)`, a part of the
collection (`self.heads[:k]`), one member of each of several collections per step
(`self.proj[i]`, `self.norm[i]`, chained or side by side), and a loop over `range(...)`
with any bound that indexes the collection. The holder may be any class (an RL agent
holding `self.critics = nn.ModuleList(...)`), its collection inherited from a parent
class (in the same file or another); outside an `nn.Module`, the members must be proven
modules (an `nn.ModuleList`, or registered with `add_module`). In a nest of collections
(groups of heads), each loop level is checked on its own."""

    why_bad = """\
The loop turns one batched operation into E small ones: E forward calls, E kernel
launches per layer and E autograd nodes per step, each too small to keep the hardware
busy. Heads that read the same input are one wide matrix multiply written as E narrow
ones. How much fusing saves depends on where the time goes: it is large where launches
and autograd bookkeeping dominate (a GPU, small batches, many members) and small, or even
negative, where the members' arithmetic dominates (a CPU with large batches).

Measured on a 2-core CPU (torch 2.13, float32, two runs of
`python benchmarks/rule_numbers.py`): a shared trunk plus E `nn.Linear(256, 6)` heads on
one input, one training step (forward, loss, backward) at batch 256, was 1.6-1.9x faster
with one wide `nn.Linear` at E=10 and 2.7-2.8x at E=50."""

    example = """\
```python
class Critic(nn.Module):
    def __init__(self, hidden: int, n_actions: int, n_heads: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(17, hidden), nn.ReLU())
        self.heads = nn.ModuleList([nn.Linear(hidden, n_actions) for _ in range(n_heads)])

    def forward(self, x):
        h = self.trunk(x)
        return torch.stack([head(h) for head in self.heads], dim=1)
```"""

    use_instead = """\
```python
class Critic(nn.Module):
    def __init__(self, hidden: int, n_actions: int, n_heads: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(17, hidden), nn.ReLU())
        self.n_heads, self.n_actions = n_heads, n_actions
        self.heads = nn.Linear(hidden, n_heads * n_actions)  # all heads, one matmul

    def forward(self, x):
        h = self.trunk(x)
        return self.heads(h).unflatten(-1, (self.n_heads, self.n_actions))
```

For identical multi-layer members, stack their weights as `(E, in, out)` tensors and
apply each layer with `torch.baddbmm` on the input expanded to `(E, batch, in)`; for any
identical members, `torch.func.stack_module_state` + `torch.func.functional_call` under
`torch.vmap(in_dims=(0, 0, None))`."""

    options = """\
- `min-members` (default 2): collections with fewer members, when the count is a
  literal, are not flagged.
- Suppress one finding with `# noqa: ENS001` on the flagged line."""

    offered_by = "same_input_offer"
    fix_safety = """\
`--fix --unsafe-fixes` rewrites `nn.Linear` heads on one input into one wide
`nn.Linear(in, E * out)`: the collection's assignment becomes the wide layer, and the
comprehension and its combine become one call reshaped to the same result (`unflatten`,
then `movedim` for a stack, `unbind` for a list or tuple, `sum`/`mean` over the heads,
nothing for a concatenation on the last axis). It is *unsafe* because the `state_dict`
keys change (`heads.3.weight` becomes rows of `heads.weight`); a load-state-dict
pre-hook added with it maps old checkpoints onto the wide layer (and `import torch` is
added when the file lacks it). The checkpoint hooks of the fused forms
(`register_load_state_dict_pre_hook`, `register_state_dict_post_hook`) are public since
torch 2.5: the rewritten code needs torch 2.5 or later. It is offered only when the
collection is built by one
comprehension or by `ModuleList()` plus one append loop, used nowhere else, and the loop is a
comprehension (or an `outs = []` + `append` loop) whose result is combined in one of
those ways (its body may reach the result through temporaries, `h = block(x)` then
`outs.append(head(h))`, which are inlined), a running total (`total = 0`, then
`total = total + head(h)`: the sum), or a loop writing each head's result into a preallocated tensor
(`out = h.new_empty(...)`; `out[:, i] = head(h)`), which becomes the stacked result
moved to that axis. Convolution heads get the same rewrite with `E * out_channels` channels.
Heads in an `nn.ModuleDict` built by one dict comprehension and run in its order
(`.values()`) get it too; the hook takes the dict's keys (`heads.task_0.weight`).
A collection built in one branch of an `if` (`if individual:` ... `else:` one shared
layer) is rewritten in that branch: the loop over it can only run when that branch
built it, and uses of the attribute in branches that exclude the loop stay as written.

For the seed's nest (E groups of H `nn.Linear` heads, group `g` on slice `g` of one
tensor, written as `groups = []` + an outer loop whose body fills `outs` (an inner
append loop or a list comprehension) + `groups.append(torch.stack(outs, ...))`; the
outer loop may run over the groups or over `range(E)` with `self.ensemble[g]`), the
unsafe fix on the inner loop's finding
replaces the whole nest with one `torch.baddbmm` over weights `(E, in, H * out)`, with a
hook that maps old `ensemble.{g}.{h}.weight` keys onto them. When every head of every
group reads one input, the nest becomes one wide `nn.Linear(in, E * H * out)`, its output
unflattened to `(..., E, H, out)` and the two axes moved to where the loops stacked them
(`movedim((-3, -2), (t, s))`, right for any input rank), with a hook for old checkpoints.

Identical MLP members (`nn.Linear` layers, each followed by at most one parameter-free
element-wise activation), written as an `nn.Sequential` or as a class of the same file
whose `forward` chains its layers (`x = torch.relu(self.h1(x))`), become one
`StackedMLP` from the package's helper module: their weights stacked layer by layer as
`(E, in, out)` parameters, run with one `torch.baddbmm` per layer, with a hook for old
checkpoints. What the loop does with each member's output
(`.transpose(0, 1)`, `torch.tanh(...)`) is written once on the stacked outputs, its dims
shifted past the member axis, or under `torch.vmap` where it cannot be. Measured: several
times faster on a GPU; on a CPU at batch 256 it can be slower (compute-bound):
`enslint verify` times each candidate on your shapes and recommends one, or the loop.

Any other identical members in an `nn.ModuleList` (local classes, factories, modules
with attention, buffers, dropout) get the general rewrite: after the list is built, it
is handed to `StackedMembers`, a small module of the package's helper module, which stacks every
parameter and buffer along a new member axis (`torch.func.stack_module_state`) and runs
all members at once with `torch.vmap` over `torch.func.functional_call`; the loop
becomes `self.heads.vmap(lambda head: <what the loop computed>, in_dims=())` reshaped to
its result. As it stacks the members the code built, it also takes members passed in
by the caller (when the project's call sites show them identical) and members built by
a helper of another file (`clones(layer, n)`); it is offered beside the wide-layer and
stacked forms too, for `enslint verify` to time. `StackedMembers` still answers as the
list did: `self.heads[k](x)` runs member k on its slice of the stacked tensors,
`len(self.heads)` is the count, `self.heads.parameters()`, `.eval()` and the like act on
every member, and its checkpoints keep the list's keys (`heads.3.proj.weight`), written
through a state-dict post-hook and read through a load pre-hook, so old checkpoints,
`from_pretrained()` and the original class all load them. Unsafe all the same: the
optimizer holds the stacked tensors (a saved optimizer state for the members' own
parameters does not carry over). Not offered for members with batch or instance norm
(vmap cannot update running statistics in place) or whose forward depends on tensor
values (`if h.sum() > 0:`, `.item()`, `.nonzero()`, sparse tensors: vmap cannot batch
them; the message then advises a batched forward by hand), for `nn.ModuleDict` (other
than the wide layer above) or `add_module` collections, or when the class uses the
collection in a way the stacked storage cannot honour (a member's attribute such as
`self.heads[0].proj`, a slice of the members, `apply`), which the message names.
Whether it is faster depends on the sizes and the device: the per-member launches go,
but `vmap` adds a fixed cost per call; check with `enslint verify` on your own shapes.

Where nothing may replace the collection (the holder is not, or not provably, an
`nn.Module`; the members are built in a parent class or outside `__init__`; the
collection is a plain list registered with `add_module` or `setattr`, or is used
elsewhere), the members are kept as they are and only the loop is rewritten:
`vmap_members(self.heads, lambda head: <what the loop computed>, in_dims=())`, from the
package's `fused_ensembles.py`, stacks their parameters and buffers with `torch.stack` at
each call (so every member's own parameters get their gradients) and runs them under
`torch.vmap`. The `state_dict`, the optimizer's parameters and every other use of the
members stay as they are; unsafe because results match the loop's to floating-point
rounding and dropout draws differ. The stacking copies the members' tensors on each
call: it pays where launches dominate (a GPU), often not on a CPU. The message says what
ruled out the fused storage. Members called through one method of theirs
(`c.expected_value(obs, act)`, `m.predict_proba(x)`) get this form too, the method run as
their forward (`method="expected_value"`).
No rewrite is offered, and the message says which of these stands in the way, when:
the loop runs several collections per member; members are called through several
methods, or with `*args` unpacked from slices; or the loop visits part of the
collection. Members that are one shared instance get no rewrite either: one call on the
stacked inputs does their work, with no parameters to fuse."""

    VALID = [
        Valid(
            """\
import torch
from torch import nn

class Decoder(nn.Module):
    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
"""
        ),
        Valid(
            """\
import torch
from torch import nn

class Pyramid(nn.Module):
    def __init__(self, channels) -> None:
        super().__init__()
        self.proj = nn.ModuleList([nn.Conv2d(c, 256, 1) for c in channels])

    def forward(self, x):
        return torch.cat([p(x) for p in self.proj], dim=1)
"""
        ),
        Valid(
            """\
from torch import nn

class Blocks(nn.Module):
    def __init__(self, d: int, n: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(n)])
        self.ffs = nn.ModuleList([nn.Linear(d, d) for _ in range(n)])

    def forward(self, h):
        for i in range(len(self.ffs)):
            h = h + self.ffs[i](self.norms[i](h))  # each layer reads the last one's output
        return h
"""
        ),
        Valid(
            """\
from torch import nn

class Init(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(8, 2) for _ in range(n)])
        for head in self.heads:
            nn.init.zeros_(head.bias)
"""
        ),
    ]
    INVALID = [
        Invalid(
            """\
import torch
from torch import nn

class Agent:  # not a module: the critics' loop costs the same
    def __init__(self, d: int, n: int) -> None:
        self.critics = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])

    def values(self, obs):
        return torch.stack([q(obs) for q in self.critics])  # expect: ENS001
"""
        ),
        Invalid(
            """\
import torch
from torch import nn

class Heads(nn.Module):
    def __init__(self, hidden: int, n_heads: int) -> None:
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(hidden, 1) for _ in range(n_heads)])

    def forward(self, h):
        return torch.stack([head(h) for head in self.heads], dim=1)  # expect: ENS001
"""
        ),
        Invalid(
            """\
import torch.nn as tnn
from torch import stack as stk

class Heads(tnn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.heads = tnn.ModuleList()
        for _ in range(n):
            self.heads.append(tnn.Linear(64, 4))

    def predict(self, h):
        outs = []
        for head in self.heads:  # expect: ENS001
            outs.append(head.forward(h))
        return stk(outs).mean(0)
"""
        ),
    ]

    def check(self, model: FileModel, settings: Settings) -> Iterator[Finding]:
        for loop in model.member_loops(reading=SAME, min_members=settings.min_members):
            inputs = {call.input_text for call in loop.entry_calls}
            if len(inputs) != 1 or loop.combine.text is None:
                continue
            member = member_of(loop.collection)
            group = group_member(loop)
            message = _same_input_message(loop, model, member, group, inputs.pop())
            offer = same_input_offer(loop, model, member, group)
            if offer.note:
                message += f" ({offer.note})"
            if offer.fixes:
                advice = remedy(offer.fixes)
            elif group is not None:
                advice = "fix: on the inner loop"
            else:
                advice = NO_FIX
            variants = _headline_variants(loop, member, group)
            title = headline(loop, variants, advice)
            yield Finding(self.code, title, loop.report_node, offer.fixes, details=message, no_fix=offer.note or "")


def _same_input_message(
    loop: MemberLoop, model: FileModel, member: Member, group: tuple[Member, str] | None, arguments: str
) -> str:
    """The finding's details: what the loop costs, and the fused form that does its work."""
    from enslint.rewrites.vmap_members import vmap_obstacle

    message = (
        f"{where(loop, model)}: {members_phrase(loop)} are each called on the same {_inputs(arguments)} "
        f"and {loop.combine.text}: {loop.size} forward calls, kernel launches "
        f"and autograd nodes per step where one batched op would do"
    )
    if member.shared:
        message += "; " + shared_advice(loop, on_slices=False)
    elif group is not None:
        message += "; " + nest_phrase(loop, group[0], group[1], on_slices=False, dim=None)
    elif len(loop.collections) > 1:
        message += "; fuse them into " + fused_for_several(loop, None)
    else:
        obstacle = vmap_obstacle(member.type_name, model.module)
        message += f"; fuse them into {fused_on_same_input(advised_kind(member, loop.collection), loop.size, obstacle)}"
        parent = loop.parent
        if parent is not None and parent.calls:
            slices = {c.slice.dim for c in parent.calls if c.input == SLICE and c.slice}
            on_slices = all(c.input == SLICE for c in parent.calls) and len(slices) == 1
            message += "; " + nest_phrase(parent, member, loop.size, on_slices, slices.pop() if on_slices else None)
    return message


def _headline_variants(loop: MemberLoop, member: Member, group: tuple[Member, str] | None) -> list[str]:
    """What the loop does, for the headline, most detailed first."""
    n = count_of(loop)
    if group is not None:
        return [
            f"{n} groups of {member_kind(group[0])} heads run one by one",
            f"{n} groups of heads run one by one",
        ]
    return [
        f"{n} {member_kind(member, loop.collection)} members of {_code(loop)} run one by one",
        f"{n} {member_kind(member, loop.collection)} members run one by one",
        f"{n} members run one by one",
    ]


def _code(loop: MemberLoop) -> str:
    text = " and ".join(f"`{t}`" for _, t in loop.collections) or f"`{loop.collection_text}`"
    return text if len(text) <= 40 else "a collection"
