from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from enslint.rules.base import Finding, Invalid, Rule, Settings, Valid
from enslint.rules.describe import NO_FIX, count_of, headline, members_phrase, per_slice_loops, slice_read, where

if TYPE_CHECKING:
    from enslint.analysis.model import FileModel


class SliceGradient(Rule):
    code = "ENS003"
    name = "quadratic-slice-backward"
    summary = "Each member indexes its own slice of an activation: backward cost grows with E squared"

    what_it_does = """\
Flags a loop whose members each take their own slice of one activation by indexing:
`h[:, i, :]`, `h[:, i]`, `h[..., i]`, `h.select(d, i)`, a width-1 slice `h[:, i:i + 1]`
or `h.narrow(d, i, 1)`, where `h` is computed in the method (so it needs a gradient), in
the loops ENS002 flags. Slices of an input that needs no gradient, and pieces taken with
`unbind`, `chunk` or `split`, are not flagged: their backward is already linear."""

    why_bad = """\
The backward of each `h[:, i, :]` allocates a zero-filled gradient the full size of `h`
and writes one slice into it, and autograd sums the E of them: E full-size allocations
and sums per step, so the cost grows with E squared, on top of the per-member calls
ENS002 describes. Iterating `h.unbind(dim)` (or `h.split(1, dim)` for width-1 slices)
gives the same slices with one backward node that assembles the gradient of `h` once.

Measured on a 2-core CPU (torch 2.13, float32, `python benchmarks/rule_numbers.py`): the
seed's ensemble (a shared trunk, then E groups of 4 `nn.Linear(256, 6)` heads, group `i`
on `h[:, i, :]`), one training step at batch 256: `unbind` alone was 1.2-1.3x faster at
E=10 and 1.8-1.9x at E=50, with the parameters and the numerics unchanged."""

    example = """\
```python
    def forward(self, x):  # x: (batch, n_members, 17)
        h = torch.relu(self.trunk(x))
        return torch.stack(
            [m(h[:, i, :]) for i, m in enumerate(self.members)], dim=1
        )
```"""

    use_instead = """\
```python
    def forward(self, x):
        h = torch.relu(self.trunk(x))
        return torch.stack(
            [m(h_i) for m, h_i in zip(self.members, h.unbind(1))], dim=1
        )
```

That removes the quadratic backward; the per-member loop itself is ENS002's, whose
fused rewrite removes both."""

    options = """\
- `min-members` (default 2): collections with fewer members, when the count is a
  literal, are not flagged.
- Suppress one finding with `# noqa: ENS003` on the flagged line."""

    offered_by = "slice_gradient_offer"
    fix_safety = """\
`--fix` applies a *safe* fix: the loop iterates `h.unbind(dim)` beside the members
(`zip(self.members, h.unbind(1))`; `h.split(1, dim)` for width-1 slices, which keep
their dim) and each `h[:, i, :]` becomes that loop's slice. It keeps the parameters, the
`state_dict` keys and the numerics; only the backward changes. It is offered only when
`h` is a plain name that the loop does not reassign and the members read slices of one
tensor; otherwise the message says why. After it, this finding is gone; ENS002's stays
until the loop is fused (`--fix --unsafe-fixes`) or suppressed."""

    VALID = [
        Valid(
            """\
import torch
from torch import nn

class InputSlices(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.members = nn.ModuleList([nn.Linear(16, 4) for _ in range(e)])

    def forward(self, x):
        # `x` is the method's input: slicing it builds no gradient
        return torch.stack([m(x[:, i]) for i, m in enumerate(self.members)], dim=1)  # expect: ENS002
"""
        ),
        Valid(
            """\
import torch
from torch import nn

class Unbound(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.trunk = nn.Linear(16, 16)
        self.members = nn.ModuleList([nn.Linear(16, 4) for _ in range(e)])

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        return torch.stack([m(h_i) for m, h_i in zip(self.members, h.unbind(1))], dim=1)  # expect: ENS002
"""
        ),
    ]
    INVALID = [
        Invalid(
            """\
import torch
from torch import nn

class Sliced(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.trunk = nn.Linear(16, 16)
        self.members = nn.ModuleList([nn.Linear(16, 4) for _ in range(e)])

    def forward(self, x):
        h = torch.relu(self.trunk(x))
        outs = []
        for i, m in enumerate(self.members):  # expect: ENS002, ENS003
            outs.append(m(h[:, i, :]))
        return torch.stack(outs, dim=1)
"""
        ),
        Invalid(
            """\
import torch
from torch import nn

class Columns(nn.Module):
    def __init__(self, e: int) -> None:
        super().__init__()
        self.trunk = nn.Linear(e, e)
        self.columns = nn.ModuleList([nn.Linear(1, 8) for _ in range(e)])

    def forward(self, x):
        h = self.trunk(x)
        return torch.cat([f(h.narrow(1, j, 1)) for j, f in enumerate(self.columns)], dim=1)  # expect: ENS002, ENS003
"""
        ),
    ]

    def check(self, model: FileModel, settings: Settings) -> Iterator[Finding]:
        from enslint.rewrites.registry import slice_gradient_offer

        for loop, entries in per_slice_loops(model, settings):
            read = [slice_read(c) for c in entries]
            quadratic = [sliced for sliced in read if sliced.activation and sliced.via in ("index", "select", "narrow")]
            if not quadratic:
                continue
            first = quadratic[0]
            tensor, dim = first.tensor, first.dim
            wide = first.via == "narrow"
            remedy_text = f"{tensor}.split(1, {dim})" if wide else f"{tensor}.unbind({dim})"
            message = (
                f"{where(loop, model)}: {members_phrase(loop)} each index their own slice of the "
                f"activation `{tensor}` (`{first.text}`): backward allocates and sums {loop.size} "
                f"full-size gradients of `{tensor}` (cost grows with {loop.size} squared); iterate "
                f"`{remedy_text}` instead"
            )
            offer = slice_gradient_offer(loop)
            no_fix = f"no automatic fix: {offer.rejection.text}" if offer.rejection is not None else ""
            if no_fix:
                message += f" ({no_fix})"
            variants = [
                f"{count_of(loop)} members index slices of the activation `{tensor}` (backward cost ~E^2)",
                f"{count_of(loop)} members index slices of `{tensor}` (backward ~E^2)",
                f"members index slices of `{tensor}` (backward ~E^2)",
            ]
            advice = f"fix: iterate `{remedy_text}`" if offer.fixes else NO_FIX
            title = headline(loop, variants, advice)
            yield Finding(self.code, title, loop.report_node, offer.fixes, details=message, no_fix=no_fix)
