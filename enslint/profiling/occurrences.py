"""One run of a loop over members, as the recorder saw it, and the verdict on it.

A run is an ensemble's when every call is of one structure and reads the same tensors,
or slices of one tensor; otherwise the verdict says why not. Runs are judged as soon as
the next one begins and only their verdicts are kept, so that a long training run costs
no more memory than a short one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

SAME, SLICES = "same", "slices"


@dataclass(frozen=True)
class TensorSeen:
    """A tensor argument, as much of it as tells one tensor from its slices."""

    identity: int
    shape: tuple[int, ...]
    dtype: str
    base: int | None  # id of the tensor it is a view of
    offset: int
    stride: tuple[int, ...]
    data: int  # data_ptr


def seen(tensor: torch.Tensor) -> TensorSeen:
    base = tensor._base
    return TensorSeen(
        id(tensor),
        tuple(tensor.shape),
        str(tensor.dtype).removeprefix("torch."),
        None if base is None else id(base),
        int(tensor.storage_offset()),
        tuple(tensor.stride()),
        tensor.data_ptr(),
    )


def tensors_in(values: Iterator[Any] | tuple | list) -> list[torch.Tensor]:
    return [v for v in values if isinstance(v, torch.Tensor)]


@dataclass
class MemberCall:
    member: int  # id of the member module
    signature: tuple  # class, parameter and buffer names with shapes
    member_class: str
    inputs: list[TensorSeen]
    outputs: list[int] = field(default_factory=list)  # data_ptrs, to tell a chain
    cuda: bool = False  # timings wait for the device
    # The sequence numbers its autograd nodes start at and end before: from the end of the
    # loop's previous member call, so that the loop's glue between calls (the slice
    # `x[:, i]` that feeds this one) is the group's cost too.
    first_node: int = 0
    last_node: int | None = None


@dataclass
class Occurrence:
    """One run of a loop: member calls of one collection from one line of one frame."""

    frame: int
    calls: list[MemberCall] = field(default_factory=list)


def verdict(calls: Sequence[MemberCall]) -> str:
    """SAME, SLICES, or why these calls are not members run side by side."""
    first = calls[0]
    for previous, call in zip(calls, calls[1:], strict=False):
        if call.signature != first.signature:
            return _difference(first, call)
        if any(t.data in previous.outputs for t in call.inputs):
            return "a chain: each member takes the previous member's output"
    if len({len(c.inputs) for c in calls}) > 1 or not first.inputs:
        return "the members take different arguments"
    kinds = [_position([c.inputs[i] for c in calls]) for i in range(len(first.inputs))]
    for kind in kinds:
        if kind not in (SAME, SLICES):
            return kind
    return SLICES if SLICES in kinds else SAME


def _position(tensors: list[TensorSeen]) -> str:
    first = tensors[0]
    if all(t.identity == first.identity or _same_view(t, first) for t in tensors):
        return SAME
    if len({t.shape for t in tensors}) > 1:
        return "the members are called with inputs of different shapes"
    # Slices of one tensor; members of one group of a nested collection share theirs.
    if first.base is not None and all(t.base == first.base for t in tensors):
        return SLICES
    return "each member gets a tensor of its own (not one tensor, nor slices of one)"


def _same_view(a: TensorSeen, b: TensorSeen) -> bool:
    return (a.data, a.shape, a.stride, a.offset, a.dtype) == (b.data, b.shape, b.stride, b.offset, b.dtype)


def _difference(a: MemberCall, b: MemberCall) -> str:
    if a.signature[0] != b.signature[0]:
        return f"the members are of different classes (`{a.member_class}`, `{b.member_class}`)"
    for (name, shape, _), (_, other, _) in zip(a.signature[1], b.signature[1], strict=False):
        if shape != other:
            return f"the members' parameters differ in shape (`{name}`: {list(shape)} and {list(other)})"
    return "the members' parameters or buffers differ"
