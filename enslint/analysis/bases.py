"""What the name of a base class says about the class, before any file is read:
torch's and lightning's module classes, builtins and typing's plain ones. Read by the
file model (model.py), the members (members.py) and the project index (project.py),
which must not import libcst for it."""

from __future__ import annotations

# Bases that make a class an nn.Module. Any public class of `torch.nn` is one, except
# the tensor types that live there too.
_NOT_MODULES = {
    "torch.nn.Parameter",
    "torch.nn.UninitializedParameter",
    "torch.nn.Buffer",
    "torch.nn.UninitializedBuffer",
}
MODULE_BASES = {
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.core.LightningModule",
    "lightning.LightningModule",
    "lightning.pytorch.LightningModule",
}


# Bases that are certainly not modules: builtins and typing's.
PLAIN_BASES = {
    "object",
    "Exception",
    "dict",
    "list",
    "tuple",
    "str",
    "int",
    "float",
    "Enum",
    "Generic",
    "Protocol",
    "NamedTuple",
    "ABC",
}


def is_torch_module_name(qualified: str) -> bool:
    """`torch.nn.Linear`, `torch.nn.modules.linear.Linear`, `lightning.LightningModule`."""
    if qualified in MODULE_BASES:
        return True
    parts = qualified.split(".")
    return (
        qualified not in _NOT_MODULES
        and parts[:2] == ["torch", "nn"]
        and parts[-1][:1].isupper()
        and "functional" not in parts
        and "parameter" not in parts
    )


def is_torch_name(qualified: str) -> bool:
    head = qualified.split(".")[0]
    return head in ("torch", "lightning", "pytorch_lightning")


# Standard modules whose classes are never nn.Modules (typing.Generic, abc.ABC, ...).
_PLAIN_MODULES = ("typing", "abc", "enum", "collections", "dataclasses")


def base_without_reading(written: str, qualified: str | None) -> tuple[bool, bool | None]:
    """(settled, whether it is an nn.Module) for a base class written `written`, as an
    import qualifies it, when no file has to be read to say: torch's and lightning's
    classes, builtins, typing's; otherwise (False, None), and the project may say."""
    if qualified is None:
        # Not imported: a builtin, or a name we cannot follow.
        return True, (False if written.split(".")[-1] in PLAIN_BASES else None)
    if is_torch_module_name(qualified):
        return True, True
    if is_torch_name(qualified) or qualified.split(".")[0] in _PLAIN_MODULES:
        return True, False
    return False, None


def module_verdict(answers: list[bool | None]) -> bool | None:
    """A class is a module when one base is, not one when none is (or it has none),
    unknown otherwise."""
    if any(answer is True for answer in answers):
        return True
    return False if all(answer is False for answer in answers) else None
