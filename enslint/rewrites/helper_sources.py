"""The code the fused rewrites call that is too long to write at each call site.

Each helper is written once per package, in the package's helper module
(`helper_module.py` says where and how a rewritten file imports it); only a text with no
file to put it beside (standard input) gets the definition in the text itself. They are
written here as the helper module holds them, with `import torch` at its top; their
docstrings fit PEP 8's 79 columns, and the engine wraps their code and comments to the
project's line length as they are written (engine/wrapping.py), so that a formatter run
after enslint changes nothing.
"""

from __future__ import annotations

import ast
import functools
import re
import textwrap

from enslint.analysis import kinds

_STACKED_MEMBERS = f'''
class {kinds.STACKED_MEMBERS}(torch.nn.Module):
    """Identical ensemble members held as one tensor per parameter and buffer
    (member axis first) and run all at once with torch.vmap over
    torch.func.functional_call: one batched op per layer instead of one op per
    member. It still answers as the nn.ModuleList it replaces: `len()`,
    `members[k](x)` and iteration run single members on their slices of the
    stacked tensors, and checkpoints keep that list's keys (`{{i}}.{{name}}`),
    written and read. An optimizer's state saved for the members' own
    parameters does not carry over."""

    def __init__(self, members):
        super().__init__()
        members = list(members)
        params, buffers = torch.func.stack_module_state(members)
        self.keys = list(members[0].state_dict())
        self.count = len(members)
        self.names = {{name: name.replace(".", "__") for name in [*params, *buffers]}}
        for name, value in params.items():
            self.register_parameter(self.names[name], torch.nn.Parameter(value))
        for name, value in buffers.items():
            self.register_buffer(self.names[name], value, persistent=name in self.keys)
        # The members' code without their tensors, which functional_call supplies: a
        # copy (the caller may hold the members), in a list so that it is not registered.
        import copy  # here: the definition stands wherever it is written

        self.template = [copy.deepcopy(members[0]).to("meta")]
        self.register_load_state_dict_pre_hook({kinds.STACKED_MEMBERS}._load_member_keys)
        self.register_state_dict_post_hook({kinds.STACKED_MEMBERS}._save_member_keys)

    def vmap(self, function, *inputs, in_dims):
        """`function(member, *inputs)` for every member at once: `member` runs
        one member, `inputs` are split along `in_dims`; results are stacked
        along dim 0."""
        tensors = {{name: getattr(self, attr) for name, attr in self.names.items()}}
        self.template[0].train(self.training)  # dropout and the like follow train()

        def one(tensors, *inputs):
            def member(*args, **kwargs):
                return torch.func.functional_call(self.template[0], tensors, args, kwargs)

            return function(member, *inputs)

        run = torch.vmap(one, in_dims=(0, *in_dims), randomness="different")
        return run(tensors, *inputs)

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        """Member `index` alone, on its slice of the stacked tensors (its
        gradients reach them)."""
        if not hasattr(index, "__index__"):  # a slice or a list of them is not one member
            raise TypeError(f"StackedMembers takes one position, not {{index!r}}")
        index = index.__index__()
        tensors = {{name: getattr(self, attr)[index] for name, attr in self.names.items()}}
        template = self.template[0].train(self.training)
        return lambda *args, **kwargs: torch.func.functional_call(template, tensors, args, kwargs)

    def __iter__(self):
        return (self[i] for i in range(self.count))

    @staticmethod
    def _load_member_keys(module, state_dict, prefix, *args):
        for name, attr in module.names.items():
            old = [f"{{prefix}}{{i}}.{{name}}" for i in range(module.count)]
            if all(key in state_dict for key in old):
                state_dict[prefix + attr] = torch.stack([state_dict.pop(key) for key in old])

    @staticmethod
    def _save_member_keys(module, state_dict, prefix, *args):
        stacked = {{name: state_dict.pop(prefix + module.names[name]) for name in module.keys}}
        for i in range(module.count):
            for name in module.keys:
                state_dict[f"{{prefix}}{{i}}.{{name}}"] = stacked[name][i]
'''

_STACKED_MLP = f'''
class {kinds.STACKED_MLP}(torch.nn.Module):
    """`count` identical MLP members stacked layer by layer and run all at
    once: layer k holds every member's weights in one (count, in, out) tensor
    and their biases in one (count, 1, out) tensor, and is one batched matmul
    (torch.baddbmm) for all members, followed by `activations[k]`. Layers are
    initialised as nn.Linear initialises them. Checkpoints saved with the
    members (`{{i}}.{{layer}}.weight`, the layers named by `member_layers`)
    load through a hook; an optimizer's state saved for the members' own
    parameters does not carry over."""

    def __init__(self, count, widths, activations, member_layers):
        super().__init__()
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for n_in, n_out in zip(widths, widths[1:]):
            bound = n_in**-0.5  # nn.Linear's default initialisation
            weight = torch.empty(count, n_in, n_out).uniform_(-bound, bound)
            bias = torch.empty(count, 1, n_out).uniform_(-bound, bound)
            self.weights.append(torch.nn.Parameter(weight))
            self.biases.append(torch.nn.Parameter(bias))
        self.activations = torch.nn.ModuleList(activations)
        self.member_layers = list(member_layers)
        self.register_load_state_dict_pre_hook({kinds.STACKED_MLP}._load_member_keys)

    def forward(self, x, member_dim=None):
        """`x` (..., in) is the input every member reads or, with
        `member_dim`, holds each member's own slice along that dim. Returns
        (count, ..., out)."""
        count = self.weights[0].shape[0]
        if member_dim is None:
            h = x.reshape(1, -1, x.shape[-1]).expand(count, -1, -1)
            rows = x.shape[:-1]
        else:
            x = x.movedim(member_dim, 0)
            h = x.reshape(count, -1, x.shape[-1])
            rows = x.shape[1:-1]
        for weight, bias, activation in zip(self.weights, self.biases, self.activations):
            h = activation(torch.baddbmm(bias, h, weight))
        return h.unflatten(1, rows)

    @staticmethod
    def _load_member_keys(module, state_dict, prefix, *args):
        count = module.weights[0].shape[0]
        old = [
            [f"{{prefix}}{{i}}" + (f".{{layer}}" if layer != "" else "") for i in range(count)]
            for layer in module.member_layers
        ]
        if all(f"{{key}}.weight" in state_dict for row in old for key in row):
            for k, row in enumerate(old):
                weights = [state_dict.pop(f"{{key}}.weight").T for key in row]
                biases = [state_dict.pop(f"{{key}}.bias")[None] for key in row]
                state_dict[f"{{prefix}}weights.{{k}}"] = torch.stack(weights)
                state_dict[f"{{prefix}}biases.{{k}}"] = torch.stack(biases)
'''

_WIDE_LAYER_HOOK = f'''
def {kinds.PER_HEAD_HOOK}(count, keys=None):
    """Load checkpoints saved before enslint fused `count` heads (named by
    position, or by `keys` for an nn.ModuleDict) into one wide layer: head i's
    weight and bias rows follow head i-1's. Only the state_dict is migrated: an
    optimizer's saved state does not carry over."""

    def hook(module, state_dict, prefix, *args):
        for name in ("weight", "bias"):
            heads = range(count) if keys is None else keys
            old = [f"{{prefix}}{{key}}.{{name}}" for key in heads]
            if all(key in state_dict for key in old):
                state_dict[prefix + name] = torch.cat([state_dict.pop(key) for key in old])

    return hook
'''

_GROUPED_HEADS_HOOK = f'''
def {kinds.GROUPED_HEAD_HOOK}(attr, groups, heads):
    """Load checkpoints saved before enslint fused `groups` x `heads` nn.Linear
    heads (`attr.g.h.weight`, `attr.g.h.bias`) into `attr_weight` (groups, in,
    heads * out) and `attr_bias` (groups, 1, heads * out). Only the state_dict
    is migrated: an optimizer's saved state does not carry over."""

    def hook(module, state_dict, prefix, *args):
        old = f"{{prefix}}{{attr}}"
        keys = [[f"{{old}}.{{g}}.{{h}}" for h in range(heads)] for g in range(groups)]
        if all(f"{{key}}.weight" in state_dict for row in keys for key in row):
            weights = [[state_dict.pop(f"{{key}}.weight").T for key in row] for row in keys]
            biases = [[state_dict.pop(f"{{key}}.bias") for key in row] for row in keys]
            state_dict[f"{{old}}_weight"] = torch.stack([torch.cat(w, dim=1) for w in weights])
            state_dict[f"{{old}}_bias"] = torch.stack([torch.cat(b)[None] for b in biases])

    return hook
'''

_NESTED_HEADS_HOOK = f'''
def {kinds.NESTED_HEAD_HOOK}(groups, heads):
    """Load checkpoints saved before enslint fused `groups` x `heads` heads on
    one input into one wide layer: head (g, h)'s weight and bias rows follow
    head (g, h - 1)'s. Only the state_dict is migrated: an optimizer's saved
    state does not carry over."""

    def hook(module, state_dict, prefix, *args):
        for name in ("weight", "bias"):
            old = [f"{{prefix}}{{g}}.{{h}}.{{name}}" for g in range(groups) for h in range(heads)]
            if all(key in state_dict for key in old):
                state_dict[prefix + name] = torch.cat([state_dict.pop(key) for key in old])

    return hook
'''

_VMAP_MEMBERS = f'''
def {kinds.CALL_TIME_RUN}(members, function, *inputs, in_dims, out_dims=0, method="forward"):
    """`function(member, *inputs)` for every member at once, under torch.vmap:
    `member` runs one member (`members` may zip several collections: then one
    member of each), `inputs` are split along `in_dims`, results stacked along
    `out_dims`; `method` names the members' method it runs, `forward` unless
    the loop called another. The members stay as they are: their parameters
    and buffers are stacked with torch.stack on each call, so gradients reach
    every member's own parameters, and checkpoints, optimizers and other code
    that uses the members keep working."""
    rows = [row if isinstance(row, tuple) else (row,) for row in members]
    if method != "forward":

        class Method(torch.nn.Module):  # the member, with `method` as its forward
            def __init__(self, member):
                super().__init__()
                self.member = member

            def forward(self, *args, **kwargs):
                return getattr(self.member, method)(*args, **kwargs)

        rows = [tuple(Method(member) for member in row) for row in rows]
    stacked = []
    for k, first in enumerate(rows[0]):
        tensors = {{
            name: torch.stack([row[k].get_parameter(name) for row in rows])
            for name, _ in first.named_parameters()
        }}
        for name, _ in first.named_buffers():
            tensors[name] = torch.stack([row[k].get_buffer(name) for row in rows])
        stacked.append(tensors)

    def one(stacked, *inputs):
        def runner(module, tensors):
            return lambda *a, **kw: torch.func.functional_call(module, tensors, a, kw)

        return function(*map(runner, rows[0], stacked), *inputs)

    run = torch.vmap(one, in_dims=(0, *in_dims), out_dims=out_dims, randomness="different")
    return run(stacked, *inputs)
'''

# name -> its definition, in the order a helper module lists them.
SOURCES: dict[str, str] = {
    kinds.STACKED_MEMBERS: _STACKED_MEMBERS,
    kinds.STACKED_MLP: _STACKED_MLP,
    kinds.PER_HEAD_HOOK: _WIDE_LAYER_HOOK,
    kinds.GROUPED_HEAD_HOOK: _GROUPED_HEADS_HOOK,
    kinds.NESTED_HEAD_HOOK: _NESTED_HEADS_HOOK,
    kinds.CALL_TIME_RUN: _VMAP_MEMBERS,
}


def source(name: str, torch_name: str = "torch") -> str:
    """Helper `name`'s definition, calling torch by `torch_name` (a file's own
    alias)."""
    text = SOURCES[name].strip("\n") + "\n"
    if torch_name != "torch":
        text = re.sub(r"\btorch\.", f"{torch_name}.", text)
    return text


def is_current(name: str, definition: str, torch_name: str = "torch") -> bool:
    """Whether `definition` (a class's or function's text) is helper `name` as this
    enslint writes it, whatever its formatting, comments and docstrings: a definition
    an older enslint wrote (a StackedMembers without indexing) or one edited by hand is
    not, and a rewrite that relies on this one's behaviour must not call it."""
    try:
        return _code_of(definition) == _current_code(name, torch_name)
    except SyntaxError:
        return False


@functools.lru_cache(maxsize=32)
def _current_code(name: str, torch_name: str) -> str:
    return _code_of(source(name, torch_name))


def _code_of(text: str) -> str:
    """The code Python reads in `text`, docstrings left out."""
    tree = ast.parse(textwrap.dedent(text))
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(node):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)
