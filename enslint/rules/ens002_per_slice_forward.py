from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from enslint.rewrites.registry import slices_offer
from enslint.rules.base import Finding, Invalid, Rule, Settings, Valid
from enslint.rules.describe import (
    advised_kind,
    count_of,
    fused_for_several,
    fused_on_slices,
    group_member,
    headline,
    member_kind,
    member_of,
    members_phrase,
    nest_phrase,
    per_slice_loops,
    remedy,
    shared_advice,
    slice_read,
    where,
)

if TYPE_CHECKING:
    from enslint.analysis.context import Member
    from enslint.analysis.loops import MemberLoop, SliceInfo
    from enslint.analysis.model import FileModel


class PerSliceForward(Rule):
    code = "ENS002"
    name = "per-slice-forward"
    summary = "Member i of a collection called on slice i of one tensor"

    what_it_does = """\
Flags a loop that calls member `i` of a collection of identical modules on slice `i`
of one tensor: `x[:, i, :]`, `x[:, i]`, `x[..., i]`, a width-1 slice `x[:, i:i + 1]` or
`x.narrow(d, i, 1)`, `x[i]` (when the code shows `x` is a tensor: an annotation, a torch
op made it, its `.shape` or `.size()` is read, or the loop runs over `range(x.shape[0])`),
`x.select(d, i)`, a piece of `x.unbind(d)`, `x.chunk(n, d)`, `torch.split` or
`torch.tensor_split`, reshaped or not before the call (`x[:, i].unsqueeze(1)`). The index
may come from `enumerate(members)`, `zip(members, x.unbind(d))`, or `range(...)` with any
bound when the body indexes the collection with it (`self.heads[i]`). Any method counts,
members may be called as `m(x)` or `m.forward(x)` with extra arguments, one member of
each of several collections may run per step (each on its own tensor's slice, or chained:
`z = self.proj[i](x[:, i]); z = self.norm[i](z)`), and nested collections are checked
level by level. A Python list of differently shaped tensors (pyramid levels, modalities)
is not a tensor, and a loop over it is not flagged."""

    why_bad = """\
Each step makes E forward calls, E kernel launches per layer and E autograd nodes where
one batched op would do: the members' weights stacked as `(E, in, out)` and applied to
all the slices at once. When the slices are taken from an activation by indexing, the
backward also grows with E squared: that is ENS003's finding, with its own safe fix.

Measured on a 2-core CPU (torch 2.13, float32, two runs of
`python benchmarks/rule_numbers.py`): the seed's ensemble (a shared trunk, then E groups
of 4 `nn.Linear(256, 6)` heads, group `i` on `x[:, i, :]`), one training step at batch
256: the fused form was 1.7-1.9x faster at E=10 and 2.2-2.3x at E=50. Fusing pays most
where launches dominate (GPUs, small batches); on a CPU with large members it can lose,
so measure with your shapes (`enslint verify`)."""

    example = """\
```python
class Ensemble(nn.Module):
    def __init__(self, hidden: int, n_members: int) -> None:
        super().__init__()
        self.trunk = nn.Linear(17, hidden)
        self.members = nn.ModuleList(
            [nn.Linear(hidden, 6) for _ in range(n_members)]
        )

    def forward(self, x):  # x: (batch, n_members, 17)
        h = torch.relu(self.trunk(x))
        return torch.stack(
            [m(h[:, i, :]) for i, m in enumerate(self.members)], dim=1
        )
```"""

    use_instead = """\
Stack the members' weights as `(E, in, out)` and apply them with one `torch.baddbmm` to
the slices moved to the front:

```python
    def forward(self, x):
        h = torch.relu(self.trunk(x))  # (batch, E, hidden)
        out = torch.baddbmm(self.bias, h.movedim(1, 0), self.weight)  # (E, batch, 6)
        return out.movedim(0, 1)
```

For members of any kind, `torch.func.stack_module_state` + `torch.vmap(in_dims=(0, 0, 0))`
does the same."""

    options = """\
- `min-members` (default 2): collections with fewer members, when the count is a
  literal, are not flagged.
- Suppress one finding with `# noqa: ENS002` on the flagged line."""

    offered_by = "slices_offer"
    fix_safety = """\
The fused forms change the parameter layout (`--fix --unsafe-fixes`). For the seed's
nest of linear heads the fused rewrite is attached to the inner loop's ENS001 finding
(see ENS001). Identical MLP members and per-channel linear maps on slices (an
`nn.Sequential`, a local MLP class, one `nn.Linear` per channel) become one `StackedMLP`
(stacked `(E, in, out)` weights, one `torch.baddbmm` per layer), the sliced dim of `x`
moved to the front; what the loop does with each member's output (`.transpose(0, 1)`) is written
once for all of them, its dims shifted past the member axis (`.transpose(1, 2)`), or by
`torch.vmap` where it cannot be. Other identical members in an `nn.ModuleList` on slices
get the general rewrite: the members are stacked by `StackedMembers`
(`torch.func.stack_module_state`) and run with `torch.vmap`, the slice `x[:, i, :]`
becoming `in_dims=(1,)` on `x`; it keeps the list's checkpoint keys and the uses ENS001
lists (`self.members[k](x)`, `len`). A width-1 slice
`x[:, i:i + 1]` is `x.unsqueeze(2)` split along dim 1. The fused rewrites are withheld
for the reasons ENS001 lists, and the message names the one that applies; where only the
collection's storage stands in the way, the members are kept and stacked at each call
(`vmap_members`, as in ENS001).

For members that are one shared instance there is nothing to fuse: `--fix` makes one call
of that instance on all the slices at once (*safe*: the parameters and `state_dict`
stay), for members that act on the last dim (linear layers, MLPs of them).

The `unbind` fix for slices of an activation belongs to ENS003: after it, ENS003's
finding is gone and this one stays until the loop is fused or suppressed."""

    VALID = [
        Valid(
            """\
import torch
from torch import nn

class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell = nn.GRUCell(8, 8)

    def forward(self, x, h):
        outs = []
        for t in range(x.shape[1]):
            h = self.cell(x[:, t], h)
            outs.append(h)
        return torch.stack(outs, 1)
"""
        ),
        Valid(
            """\
import torch
from torch import nn

class Levels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(256, 256, 3) for _ in range(5)])

    def forward(self, feats):
        return [conv(feats[i]) for i, conv in enumerate(self.convs)]
"""
        ),
    ]
    INVALID = [
        Invalid(
            """\
import torch
from torch import nn

class Forecaster(nn.Module):
    def __init__(self, window: int, horizon: int, channels: int, individual: bool) -> None:
        super().__init__()
        self.individual, self.channels = individual, channels
        if individual:
            self.proj = nn.ModuleList()
            for _ in range(channels):
                self.proj.append(nn.Linear(window, horizon))
        else:
            self.proj = nn.Linear(window, horizon)

    def forward(self, x):
        if not self.individual:
            return self.proj(x.transpose(1, 2))
        outs = []
        for c in range(self.channels):  # expect: ENS002
            z = self.proj[c](x[:, :, c])
            outs.append(z)
        return torch.stack(outs, dim=1)
"""
        ),
        Invalid(
            """\
import torch
from torch.nn import Linear, Module, ModuleList

class PerChannel(Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.nets = ModuleList([Linear(32, 1) for _ in range(n)])

    def forward(self, x):
        out = torch.empty(x.shape[0], self.n)
        for i in range(self.n):  # expect: ENS002
            out[:, i] = self.nets[i](x[:, i, :]).squeeze(-1)
        return out
"""
        ),
        Invalid(
            """\
import torch
from torch import nn

class Zipped(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.members = nn.ModuleList([nn.Linear(16, 16) for _ in range(e)])

    def forward(self, x):
        return tuple(m(xi) for m, xi in zip(self.members, x.unbind(1)))  # expect: ENS002
"""
        ),
    ]

    def check(self, model: FileModel, settings: Settings) -> Iterator[Finding]:
        for loop, entries in per_slice_loops(model, settings):
            first = slice_read(entries[0])
            tensors = list(dict.fromkeys(slice_read(call).tensor for call in entries))
            member = member_of(loop.collection)
            sliced = " and ".join(f"`{t}`" for t in tensors)
            group = group_member(loop)
            message = _per_slice_message(loop, model, member, group, first, sliced)
            offer = slices_offer(loop, model, member, group)
            if offer.note:
                message += f" ({offer.note})"
            fixes = offer.fixes
            variants = _headline_variants(loop, member, group, sliced)
            advice = "fix: on the inner loop (ENS001)" if group is not None and not fixes else remedy(fixes)
            title = headline(loop, variants, advice)
            yield Finding(self.code, title, loop.report_node, fixes, details=message, no_fix=offer.note or "")


def _per_slice_message(
    loop: MemberLoop,
    model: FileModel,
    member: Member,
    group: tuple[Member, str] | None,
    first: SliceInfo,
    sliced: str,
) -> str:
    """The finding's details: what the loop costs, and the fused form that does its work."""
    from enslint.rewrites.vmap_members import vmap_obstacle

    dim = first.dim
    message = (
        f"{where(loop, model)}: {members_phrase(loop)} each run on their own slice of "
        f"{sliced} (`{first.text}`, dim {dim}): {loop.size} forward calls and autograd "
        f"nodes per step where one batched op would do"
    )
    if member.shared:
        message += "; " + shared_advice(loop, on_slices=True)
    elif group is not None:
        message += "; " + nest_phrase(loop, group[0], group[1], on_slices=True, dim=dim)
    elif len(loop.collections) > 1:
        message += "; fuse them into " + fused_for_several(loop, dim)
    else:
        obstacle = vmap_obstacle(member.type_name, model.module)
        message += (
            f"; fuse them into {fused_on_slices(advised_kind(member, loop.collection), loop.size, dim, obstacle)}"
        )
    return message


def _headline_variants(loop: MemberLoop, member: Member, group: tuple[Member, str] | None, sliced: str) -> list[str]:
    """What the loop does, for the headline, most detailed first."""
    n = count_of(loop)
    of = sliced if len(sliced) <= 30 else "one tensor"
    if group is not None:
        return [
            f"{n} groups of heads run one by one on slices of {of}",
            f"{n} groups run one by one on slices of {of}",
        ]
    kind = member_kind(member, loop.collection)
    return [
        f"{n} {kind} members run one by one on slices of {of}",
        f"{n} members run one by one on slices of {of}",
        f"{n} members run one by one on slices",
    ]
