"""Is the rewrite the same function as the original? Outputs and every gradient.

One training-like step on both modules with the same inputs and the same random
weighting of the outputs (so every output element reaches the loss); then the outputs,
the inputs' gradients and every parameter's gradient must match. The rewrite's parameters
are laid out differently (stacked, concatenated), so the original's gradients are mapped
onto them through the rewrite's own checkpoint migration hook: the hook turns old
per-member tensors into the fused layout, it is a pure re-arrangement of elements, and a
gradient re-arranges the same way as the parameter it belongs to.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

# (rtol, atol) per dtype. atol is scaled by the largest magnitude of the tensor compared
# (at least 1): fusing reorders sums over thousands of terms (a bias gradient sums over
# batch x positions), whose rounding grows with their size, not with each element's.
TOLERANCES = {
    torch.float64: (1e-9, 1e-9),
    torch.float32: (1e-5, 1e-5),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float16: (2e-3, 2e-3),
}


@dataclass
class Step:
    outputs: list[torch.Tensor]
    input_grads: list[torch.Tensor | None]
    grads: dict[str, torch.Tensor]  # parameter name -> gradient (zeros where unused)


@dataclass
class Comparison:
    equivalent: bool
    max_abs_error: float
    problems: list[str] = field(default_factory=list)  # what differed, first ones only
    rule: str = ""  # the test that decided, for the report


def flatten(value: object) -> list[torch.Tensor]:
    """The tensors of an output, in order (tuples, lists and dicts walked)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in value for t in flatten(value[key])]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in flatten(item)]
    return []


def run_step(model: torch.nn.Module, call: Callable[..., object], inputs: list[torch.Tensor], seed: int = 2) -> Step:
    """`call(model, *inputs)`, then backward of a random weighting of every output."""
    model.zero_grad(set_to_none=True)
    inputs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    outputs = flatten(call(model, *inputs))
    generator = torch.Generator().manual_seed(seed)
    weights = [torch.randn(out.shape, generator=generator, dtype=torch.float64) for out in outputs]
    loss = sum(
        (out.double() * w.to(out.device)).sum()
        for out, w in zip(outputs, weights, strict=True)
        if out.is_floating_point()
    )
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    grads = {
        name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
        for name, p in model.named_parameters()
    }
    return Step([o.detach() for o in outputs], [x.grad for x in inputs], grads)


def mapped_gradients(
    original_grads: dict[str, torch.Tensor], rewritten: torch.nn.Module
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The original's parameter gradients in the rewrite's layout, and what did not map:
    the rewrite's parameters no gradient reached, the original's that went nowhere."""
    probe = copy.deepcopy(rewritten)
    with torch.no_grad():
        for p in probe.parameters():
            p.fill_(float("nan"))  # anything the mapping misses stays visible
    result = probe.load_state_dict(dict(original_grads), strict=False)
    params = dict(probe.named_parameters())
    unreached = sorted(set(result.missing_keys) & set(params)) + sorted(f"original {k}" for k in result.unexpected_keys)
    return {name: p.detach() for name, p in params.items() if name not in unreached}, unreached


@contextlib.contextmanager
def full_precision() -> Iterator[None]:
    """float32 as float32: no TF32 in matmuls and convolutions (cuDNN allows it by
    default), so that a difference is the rewrite's, not the hardware's shortcut."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
        torch.set_float32_matmul_precision(saved[2])


def compare(
    original: Step, rewritten: Step, rewritten_model: torch.nn.Module, dtype: torch.dtype, reference: Step | None = None
) -> Comparison:
    """With a `reference` (the original run in float64; verify passes one below float64):
    the rewrite passes where its error against the reference is at most twice the
    original's plus the tolerance. Reordered sums (a fused matmul, a GPU's split
    reductions) differ from the original by rounding that grows with the dtype's epsilon
    and the reduction's length; what matters is that the rewrite is no less accurate."""
    rtol, atol = TOLERANCES.get(dtype, TOLERANCES[torch.float32])
    problems: list[str] = []
    worst = 0.0
    truth = _reference_values(reference, rewritten_model) if reference is not None else {}

    def check(what: str, a: torch.Tensor | None, b: torch.Tensor | None) -> None:
        nonlocal worst
        if a is None or b is None:
            if (a is None) != (b is None):
                problems.append(f"{what}: present in one module only")
            return
        if a.shape != b.shape:
            problems.append(f"{what}: shape {tuple(a.shape)} vs {tuple(b.shape)}")
            return
        if not a.is_floating_point():
            if not torch.equal(a, b):
                problems.append(f"{what}: values differ")
            return
        error = (a.double() - b.double()).abs().nan_to_num(nan=float("inf")).max().item() if a.numel() else 0.0
        worst = max(worst, error)
        scale = max(1.0, a.double().abs().max().item()) if a.numel() else 1.0
        exact = truth.get(what)
        if exact is not None and a.numel():
            exact = exact.double().to(a.device)
            own = (a.double() - exact).abs().max().item()
            theirs = (b.double() - exact).abs().nan_to_num(nan=float("inf")).max().item()
            if theirs > 2 * own + atol * scale:
                problems.append(f"{what}: error against float64 {theirs:.3g}, the original's {own:.3g}")
            return
        try:
            torch.testing.assert_close(b, a, rtol=rtol, atol=atol * scale, equal_nan=False)
        except AssertionError:
            problems.append(f"{what}: max abs error {error:.3g}")

    if len(original.outputs) != len(rewritten.outputs):
        problems.append(f"{len(original.outputs)} output tensors vs {len(rewritten.outputs)}")
    # Outputs may differ in number (reported above): the common ones are compared.
    for i, (output, output_rewrite) in enumerate(zip(original.outputs, rewritten.outputs, strict=False)):
        check(f"output {i}", output, output_rewrite)
    for i, (grad, grad_rewrite) in enumerate(zip(original.input_grads, rewritten.input_grads, strict=False)):
        check(f"gradient of input {i}", grad, grad_rewrite)
    expected, unreached = mapped_gradients(original.grads, rewritten_model)
    problems += [f"{name}: the checkpoint hook does not map it" for name in unreached]
    for name, grad in expected.items():
        check(f"gradient of {name}", grad, rewritten.grads.get(name))
    return Comparison(not problems, worst, problems, _decision_rule(reference is not None, rtol, atol))


def _reference_values(reference: Step, rewritten_model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    """The float64 run's outputs and gradients, named as `compare` names what it checks
    (the parameter gradients in the rewrite's layout)."""
    truth: dict[str, torch.Tensor | None] = {}
    truth.update({f"output {i}": t for i, t in enumerate(reference.outputs)})
    truth.update({f"gradient of input {i}": t for i, t in enumerate(reference.input_grads)})
    mapped, _ = mapped_gradients(reference.grads, rewritten_model)
    truth.update({f"gradient of {name}": t for name, t in mapped.items()})
    return truth


def _decision_rule(against_reference: bool, rtol: float, atol: float) -> str:
    """The test that decided equivalence, for the report."""
    if against_reference:
        return f"error vs a float64 run <= 2x the original's + atol {atol:g}"
    return f"assert_close rtol {rtol:g}, atol {atol:g}"
