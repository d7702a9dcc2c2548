"""The fix engine and `--fix` / `--diff`: transactional, idempotent, faithful to the file."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from enslint.cli import main
from enslint.engine.apply import apply_fixes
from enslint.findings import Applicability, Edit, Fix, Form

SLICED = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Sliced(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.trunk = nn.Linear(d, d)
            self.members = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])

        def forward(self, x):
            h = torch.relu(self.trunk(x))
            outs = []
            for i, member in enumerate(self.members):
                outs.append(member(h[:, i, :]))
            return torch.stack(outs, dim=1)
    """
)
FIXED = SLICED.replace(
    "for i, member in enumerate(self.members):\n            outs.append(member(h[:, i, :]))",
    "for member, h_i in zip(self.members, h.unbind(1)):\n            outs.append(member(h_i))",
)


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--no-cache", *args])


def edit(start: int, end: int, content: str) -> Edit:
    return Edit(start, end, content, 1, start + 1, 1, end + 1)


# -- the engine -------------------------------------------------------------------------
def test_apply_fixes_in_order_and_skips_overlaps():
    text = "abcdefgh"
    first = Fix(Applicability.SAFE, "one", (edit(0, 2, "AB"), edit(6, 7, "G")), Form.UNBIND)
    overlapping = Fix(Applicability.SAFE, "two", (edit(1, 3, "xx"),), Form.UNBIND)
    later = Fix(Applicability.SAFE, "three", (edit(3, 4, "D"),), Form.UNBIND)
    result = apply_fixes(text, [later, overlapping, first])
    assert result.text == "ABcDefGh"
    assert (result.applied, result.skipped) == (2, 1)


def test_a_fix_is_all_or_nothing():
    text = "abcdef"
    taken = Fix(Applicability.SAFE, "taken", (edit(0, 1, "A"),), Form.UNBIND)
    clashing = Fix(Applicability.SAFE, "clashes in one of its edits", (edit(4, 5, "E"), edit(0, 2, "zz")), Form.UNBIND)
    result = apply_fixes(text, [clashing, taken])
    assert result.text == "Abcdef" and result.skipped == 1


# -- the command ------------------------------------------------------------------------
def test_text_output_marks_fixable_findings(project):
    (project / "m.py").write_text(SLICED)
    result = check()
    assert "ENS003 [*] `Sliced.forward`" in result.stdout  # the safe unbind fix
    assert "ENS002 `Sliced.forward`" in result.stdout  # the fused rewrite is unsafe
    assert (
        "[*] 1 fixable with the `--fix` option (1 hidden fix can be enabled with the `--unsafe-fixes` option)."
        in result.stdout
    )


def test_json_carries_the_fix(project):
    (project / "m.py").write_text(SLICED)
    items = {d["code"]: d for d in json.loads(check("--format", "json").stdout)}
    fix = items["ENS003"]["fix"]
    assert fix["applicability"] == "safe" and fix["form"] == "unbind"
    assert fix["message"] == "Iterate `h.unbind(1)` instead of indexing `h[:, i, :]`"
    assert [e["content"] for e in fix["edits"]] == ["member, h_i", "zip(self.members, h.unbind(1))", "h_i"]
    assert fix["edits"][0]["location"] == {"row": 14, "column": 13}


def test_diff_shows_and_writes_nothing(project):
    path = project / "m.py"
    path.write_text(SLICED)
    result = check("--diff")
    assert result.exit_code == 1
    assert "-        for i, member in enumerate(self.members):" in result.stdout
    assert "+        for member, h_i in zip(self.members, h.unbind(1)):" in result.stdout
    assert path.read_text() == SLICED


def test_fix_writes_and_a_second_fix_changes_nothing(project):
    path = project / "m.py"
    path.write_text(SLICED)
    result = check("--fix")
    assert path.read_text() == FIXED
    assert "Applied 1 fix." in result.stdout
    assert result.exit_code == 1  # the loop is still one call per member: ENS002 remains
    assert {d["code"] for d in json.loads(check("--format", "json").stdout)} == {"ENS002"}
    assert "ENS002 `Sliced.forward`" in result.stdout and "[*]" not in result.stdout
    again = check("--fix")
    assert path.read_text() == FIXED and "Applied 0 fixes." in again.stdout
    assert check("--diff").exit_code == 0
    assert not [p for p in project.iterdir() if p.name.startswith(".m.py.")]  # no temp files left


def test_fix_keeps_line_endings_encoding_and_mode(project):
    path = project / "m.py"
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + SLICED
    path.write_bytes(source.replace("\n", "\r\n").encode("latin-1"))
    path.chmod(0o640)
    check("--fix")
    written = path.read_bytes()
    expected = ("# -*- coding: latin-1 -*-\n# caf\xe9\n" + FIXED).replace("\n", "\r\n").encode("latin-1")
    assert written == expected
    assert path.stat().st_mode & 0o777 == 0o640


def test_fix_keeps_a_byte_order_mark(project):
    path = project / "m.py"
    path.write_bytes(b"\xef\xbb\xbf" + SLICED.encode())
    check("--fix")
    assert path.read_bytes() == b"\xef\xbb\xbf" + FIXED.encode()


def test_noqa_sites_and_broken_files_are_never_touched(project):
    suppressed = SLICED.replace("enumerate(self.members):", "enumerate(self.members):  # noqa: ENS002, ENS003")
    (project / "kept.py").write_text(suppressed)
    (project / "broken.py").write_text(SLICED + "\ndef oops(:\n")
    result = check("--fix")
    assert (project / "kept.py").read_text() == suppressed
    assert (project / "broken.py").read_text() == SLICED + "\ndef oops(:\n"
    assert "broken.py" in result.stdout and "ENS000" in result.stdout


def test_a_tensor_that_changes_per_member_is_not_one_tensor(project):
    changing = SLICED.replace(
        "outs.append(member(h[:, i, :]))", "outs.append(member(h[:, i, :]))\n            h = h * 2"
    )
    (project / "m.py").write_text(changing)
    assert json.loads(check("--format", "json").stdout) == []


def test_no_fix_when_the_sliced_tensor_is_not_a_name(project):
    source = SLICED.replace("member(h[:, i, :])", "member(self.trunk(x)[:, i, :])")
    (project / "m.py").write_text(source)
    items = {d["code"]: d for d in json.loads(check("--format", "json").stdout)}
    assert items["ENS002"]["fix"] is None and items["ENS003"]["fix"] is None
    assert "no automatic fix: the sliced tensor is not a plain name" in items["ENS003"]["details"]


def test_index_used_elsewhere_keeps_the_counter(project):
    source = SLICED.replace("outs.append(member(h[:, i, :]))", "outs.append(member(h[:, i, :]) * (i + 1))")
    path = project / "m.py"
    path.write_text(source)
    check("--fix")
    assert "for (i, member), h_i in zip(enumerate(self.members), h.unbind(1)):" in path.read_text()
    assert "member(h_i) * (i + 1)" in path.read_text()


def test_unique_slice_name(project):
    source = SLICED.replace("h = torch.relu(self.trunk(x))", "h = torch.relu(self.trunk(x))\n        h_i = None")
    path = project / "m.py"
    path.write_text(source)
    check("--fix")
    assert "zip(self.members, h.unbind(1))" in path.read_text() and "member(h_i_)" in path.read_text()


HEADS_WITHOUT_TORCH_IMPORT = textwrap.dedent(
    '''\
    """Heads."""
    from __future__ import annotations

    from torch import nn, stack


    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])

        def forward(self, x):
            return stack([h(x) for h in self.heads], dim=1)
    '''
)


def test_unsafe_fix_adds_import_torch_after_future_imports(project):
    source = HEADS_WITHOUT_TORCH_IMPORT
    path = project / "m.py"
    path.write_text(source)
    assert check("--fix").exit_code == 1 and path.read_text() == source  # unsafe: not without the flag
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    # `stack` went with the loop it combined
    assert fixed.startswith('"""Heads."""\nfrom __future__ import annotations\n\nimport torch\nfrom torch import nn\n')
    assert "\nfrom fused_ensembles import load_per_head_keys\n" in fixed
    assert "def load_per_head_keys" not in fixed  # the hook lives in the helper module
    assert "def load_per_head_keys(count, keys=None):" in (project / "fused_ensembles.py").read_text()
    assert "return self.heads(x).unflatten(-1, (self.heads_count, -1)).movedim(-2, 1)" in fixed
    compile(fixed, "m.py", "exec")


def test_helpers_are_written_once_per_package(project):
    """Two fixed files of one package import one helper module, created once and added
    to, never a definition pasted into either file; a file that uses relative imports
    imports it relatively."""
    package = project / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text(HEADS_WITHOUT_TORCH_IMPORT)
    (package / "sub" / "b.py").write_text(
        HEADS_WITHOUT_TORCH_IMPORT.replace("import nn\n", "import nn\n\nfrom .. import a\n")
    )
    result = check("--fix", "--unsafe-fixes")
    assert "pkg/fused_ensembles.py: created with load_per_head_keys" in result.output
    a, b = (package / "a.py").read_text(), (package / "sub" / "b.py").read_text()
    assert "from .fused_ensembles import load_per_head_keys" in a
    assert "from ..fused_ensembles import load_per_head_keys" in b
    assert "def load_per_head_keys" not in a + b
    helpers = (package / "fused_ensembles.py").read_text()
    assert helpers.count("def load_per_head_keys") == 1
    assert not list(package.rglob("*.enslint-tmp"))


def test_standard_input_keeps_the_helper_in_the_text(project):
    """Fixed text on standard output has nowhere beside it for a helper module."""
    result = CliRunner().invoke(
        main, ["check", "--fix", "--unsafe-fixes", "--stdin-filename", "m.py", "-"], input=HEADS_WITHOUT_TORCH_IMPORT
    )
    assert "def load_per_head_keys(count, keys=None):" in result.stdout
    assert "fused_ensembles" not in result.stdout
    assert not (project / "fused_ensembles.py").exists()


def test_multi_line_rewrites_keep_tab_indentation(project):
    source = HEADS_WITHOUT_TORCH_IMPORT.replace("    ", "\t")
    path = project / "m.py"
    path.write_text(source)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "\t\tself.heads = nn.Linear(d, n * 2)\n\t\tself.heads_count = n\n" in fixed
    assert "    " not in fixed.split("def _merge_per_head_keys")[0]
    compile(fixed, "m.py", "exec")


def test_two_rewrites_in_one_file_share_one_helper(project):
    second = HEADS_WITHOUT_TORCH_IMPORT.split("\n\n\n")[1].replace("class Heads", "class MoreHeads")
    source = HEADS_WITHOUT_TORCH_IMPORT + "\n\n" + second
    path = project / "m.py"
    path.write_text(source)
    result = check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "Applied 2 fixes." in result.stdout  # the second waited one pass: both import the helper
    assert fixed.count("from fused_ensembles import load_per_head_keys\n") == 1 and fixed.count("import torch\n") == 1
    assert (project / "fused_ensembles.py").read_text().count("def load_per_head_keys") == 1
    assert fixed.count("register_load_state_dict_pre_hook") == 2
    compile(fixed, "m.py", "exec")


def test_a_helper_module_written_by_another_version_is_kept_and_named(project):
    """A helper that is not the one this enslint writes (an older enslint's, or edited) is
    never called by a new rewrite nor overwritten: the file it would serve is left as it
    is, and the message names the helper and what to do."""
    path = project / "m.py"
    path.write_text(HEADS_WITHOUT_TORCH_IMPORT)
    check("--fix", "--unsafe-fixes")
    helpers = project / "fused_ensembles.py"
    older = helpers.read_text().replace("keys=None):", "keys=None, old=True):")
    helpers.write_text(older)
    path.write_text(HEADS_WITHOUT_TORCH_IMPORT)
    result = check("--fix", "--unsafe-fixes")
    assert "its `load_per_head_keys` is not the one this enslint writes" in result.output
    assert path.read_text() == HEADS_WITHOUT_TORCH_IMPORT and helpers.read_text() == older


def test_a_helper_module_reformatted_by_the_project_still_serves(project):
    """Formatting, comments and docstrings are the project's own: a helper whose code is
    this enslint's serves new rewrites however it is laid out."""
    path = project / "m.py"
    path.write_text(HEADS_WITHOUT_TORCH_IMPORT)
    check("--fix", "--unsafe-fixes")
    helpers = project / "fused_ensembles.py"
    relaid = helpers.read_text().replace("(count, keys=None):\n", "(\n    count,\n    keys=None,  # ours\n):\n")
    relaid = re.sub(r'"""Load checkpoints.*?"""', '"""Our own words."""', relaid, flags=re.S)
    assert relaid != helpers.read_text()
    helpers.write_text(relaid)
    second = project / "n.py"
    second.write_text(HEADS_WITHOUT_TORCH_IMPORT)
    result = check("--fix", "--unsafe-fixes")
    assert "not the one" not in result.output
    assert "from fused_ensembles import load_per_head_keys" in second.read_text()
    assert helpers.read_text() == relaid


def test_a_file_defining_its_own_helper_of_that_name_is_not_called(project):
    """The form that would call the file's own `load_per_head_keys` is not offered
    (it says why); the next form is, and the file's definition stays as it is."""
    own = "\n\ndef load_per_head_keys(count, keys=None):\n    return None\n"
    path = project / "m.py"
    path.write_text(HEADS_WITHOUT_TORCH_IMPORT + own)
    plain = project / "plain.py"
    plain.write_text(HEADS_WITHOUT_TORCH_IMPORT)
    assert "fix: one wide layer" in check("--unsafe-fixes", "plain.py").output
    result = check("--unsafe-fixes", "m.py")
    assert "fix: one wide layer" not in result.output and "fix: stacked weights" in result.output
    check("--fix", "--unsafe-fixes", "m.py")
    fixed = path.read_text()
    assert fixed.endswith(own) and fixed.count("load_per_head_keys(") == 1
    compile(fixed, "m.py", "exec")


HEADS_WITH_MODULELIST_IMPORT = textwrap.dedent(
    """\
    import torch
    from torch import nn
    from torch.nn import ModuleList, Parameter


    class Heads(nn.Module):
        def __init__(self, d: int, n: int):
            super().__init__()
            self.scale = Parameter(torch.ones(1))
            self.heads = ModuleList([nn.Linear(d, 2) for _ in range(n)])

        def forward(self, x):
            return torch.stack([h(x) for h in self.heads], dim=1) * self.scale
    """
)


def test_a_rewrite_drops_the_imports_only_it_used(project):
    path = project / "m.py"
    path.write_text(HEADS_WITH_MODULELIST_IMPORT)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "from torch.nn import Parameter\n" in fixed and "ModuleList" not in fixed
    compile(fixed, "m.py", "exec")


def test_an_import_still_used_elsewhere_stays(project):
    path = project / "m.py"
    other = "\n\nclass Other(nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.layers = ModuleList([nn.Linear(2, 2)])\n"
    path.write_text(HEADS_WITH_MODULELIST_IMPORT + other)
    check("--fix", "--unsafe-fixes")
    assert "from torch.nn import ModuleList, Parameter\n" in path.read_text()


def test_an_import_that_goes_entirely_takes_its_line(project):
    path = project / "m.py"
    path.write_text(
        HEADS_WITH_MODULELIST_IMPORT.replace(
            "from torch.nn import ModuleList, Parameter",
            "from torch.nn import ModuleList\nfrom torch.nn import Parameter",
        )
    )
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert fixed.startswith(
        "import torch\nfrom torch import nn\nfrom torch.nn import Parameter\n\nfrom fused_ensembles import load_per_head_keys\n\n\n"
    )


def test_a_rewrite_keeps_the_tool_directives_of_the_lines_it_replaces(project):
    """`# noqa`, `# type:` and `# pragma` comments on the seed nest's loops still apply to
    the code that replaces them; a statement's trailing comment stays where it was."""
    from conftest import ROOT

    source = (ROOT / "fixtures" / "positive" / "seed_shared_trunk_head_groups.py").read_text()
    source = source.replace(
        "for g, heads in enumerate(self.ensemble):  # expect: ENS002",
        "for g, heads in enumerate(self.ensemble):  # noqa: B007",
    )
    source = source.replace("for head in heads:  # expect: ENS001", "for head in heads:  # type: ignore[attr-defined]")
    source = source.replace(
        "return torch.stack(groups, dim=1)", "return torch.stack(groups, dim=1)  # pragma: no cover"
    )
    path = project / "nest.py"
    path.write_text(source)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "for head in heads" not in fixed  # rewritten
    for directive in ("# noqa: B007", "# type: ignore[attr-defined]", "# pragma: no cover"):
        assert fixed.count(directive) == 1, (directive, fixed)
    compile(fixed, "nest.py", "exec")


TEMPORARIES = textwrap.dedent(
    """\
    import torch
    from torch import nn


    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 2)) for _ in range(n)])
            self.readout = nn.Linear(2, 1)

        def forward(self, x):
            outs = []
            for head in self.heads:
                h = head(x)
                y = self.readout(h)
                outs.append(y)
            return torch.stack(outs, dim=1)
    """
)


def test_a_loop_body_with_temporaries_is_one_expression_per_member(project):
    path = project / "m.py"
    path.write_text(TEMPORARIES)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "for head in self.heads" not in fixed and "self.readout(" in fixed
    compile(fixed, "m.py", "exec")


def test_a_temporary_read_after_the_loop_keeps_the_loop(project):
    path = project / "m.py"
    source = TEMPORARIES.replace("return torch.stack(outs, dim=1)", "return torch.stack(outs, dim=1), h")
    path.write_text(source)
    check("--fix", "--unsafe-fixes")
    assert path.read_text() == source


def test_a_running_total_is_a_sum_over_the_members(project):
    path = project / "m.py"
    source = TEMPORARIES.replace(
        "outs = []\n        for head in self.heads:\n            h = head(x)\n            y = self.readout(h)\n            outs.append(y)\n        return torch.stack(outs, dim=1)",
        "total = 0.0\n        for head in self.heads:\n            total += head(x)\n        return total",
    )
    assert "total += head(x)" in source
    path.write_text(source)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "total = " in fixed and ".sum(0)" in fixed and "for head in self.heads" not in fixed


def test_a_temporary_assigned_again_is_inlined_in_order(project):
    path = project / "m.py"
    source = TEMPORARIES.replace(
        "h = head(x)\n            y = self.readout(h)\n            outs.append(y)",
        "h = head(x)\n            h = torch.tanh(h)\n            h = self.readout(h)\n            outs.append(h)",
    )
    assert "h = torch.tanh(h)" in source
    path.write_text(source)
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text()
    assert "for head in self.heads" not in fixed and "self.readout(torch.tanh(" in fixed


HEADS_ON_ONE_INPUT = textwrap.dedent(
    """\
    import torch
    from torch import nn
    # a comment line
    class Heads(nn.Module):
        def __init__(self, d, n):
            super().__init__()
            self.heads = nn.ModuleList([nn.Linear(d, 2) for _ in range(n)])

        def forward(self, x):
            outs = [head(x) for head in self.heads]
            return torch.stack(outs, dim=1)
    """
)


def test_fix_positions_follow_the_parsers_lines(project):
    """A form feed, \\x1c or U+2028 inside a line is not a line end for Python or libcst:
    the fix must land where the parser put the code (it used to merge `outs = ...` into
    the comment above)."""
    path = project / "m.py"
    source = HEADS_ON_ONE_INPUT.replace("# a comment line", "# a comment \x0c line \x1c and \u2028 more")
    path.write_text(source, encoding="utf-8")
    check("--fix", "--unsafe-fixes")
    fixed = path.read_text(encoding="utf-8")
    compile(fixed, "m.py", "exec")
    assert "# a comment \x0c line \x1c and \u2028 more\n" in fixed
    assert "        outs = self.heads(x).unflatten(-1, (self.heads_count, -1)).movedim(-2, 1)\n" in fixed


def test_old_mac_line_endings_stay_as_they_are(project):
    path = project / "m.py"
    path.write_bytes(HEADS_ON_ONE_INPUT.replace("\n", "\r").encode())
    check("--fix", "--unsafe-fixes")
    fixed = path.read_bytes()
    assert b"\n" not in fixed and b"self.heads_count = n\r" in fixed
    # torch went with the loop that was its only use; the helper's import keeps the endings
    assert fixed.startswith(b"from torch import nn\r\rfrom fused_ensembles import load_per_head_keys\r")
    compile(fixed.decode(), "m.py", "exec")


# -- files that are not plain, and what --fix must not do to them -------------------------
def test_a_fifo_or_a_device_is_reported_not_read(project):
    import os

    os.mkfifo(project / "pipe.py")
    (project / "zero.py").symlink_to("/dev/zero")
    (project / "m.py").write_text(SLICED)
    result = check("pipe.py", "zero.py", "m.py", "--format", "json")
    found = {(d["filename"].rsplit("/", 1)[-1], d["code"]): d["message"] for d in json.loads(result.stdout)}
    assert "not a regular file (a FIFO)" in found[("pipe.py", "ENS000")]
    assert "not a regular file (a character device)" in found[("zero.py", "ENS000")]
    assert ("m.py", "ENS003") in found  # the others are still checked


def test_fix_writes_through_a_symlink_and_keeps_it_a_link(project):
    (project / "real.py").write_text(SLICED)
    (project / "link.py").symlink_to("real.py")
    check("--fix", "link.py")
    assert (project / "link.py").is_symlink() and (project / "real.py").read_text() == FIXED


def test_fix_refuses_read_only_and_hard_linked_files_and_goes_on(project):
    import os

    (project / "locked.py").write_text(SLICED)
    os.chmod(project / "locked.py", 0o444)
    (project / "linked.py").write_text(SLICED)
    os.link(project / "linked.py", project / "other_name.py")
    (project / "free.py").write_text(SLICED)
    result = check("--fix", "locked.py", "linked.py", "free.py")
    assert result.exit_code == 2
    assert "enslint: error: locked.py: not written: read-only file: left as it is" in result.stderr
    assert "linked.py: not written: the file has 2 hard links" in result.stderr
    assert (project / "locked.py").read_text() == SLICED and (project / "linked.py").read_text() == SLICED
    assert (project / "free.py").read_text() == FIXED


def test_fix_keeps_the_owner(project):
    import os

    if os.geteuid() != 0:
        pytest.skip("changing a file's owner needs root")
    path = project / "theirs.py"
    path.write_text(SLICED)
    os.chown(path, 4242, 4343)
    check("--fix", "theirs.py")
    info = path.stat()
    assert path.read_text() == FIXED and (info.st_uid, info.st_gid) == (4242, 4343)


def _apply_one_by_one(text, fixes):
    """The engine's first implementation, the oracle: overlap against every span taken,
    edits applied right to left one at a time (quadratic, plainly right)."""
    from enslint.engine.apply import _overlaps

    taken, chosen, applied = [], [], 0
    for fix in sorted(fixes, key=lambda f: min((e.start, e.end) for e in f.edits)):
        new = [
            e for e in fix.edits if not any((e.start, e.end, e.content) == (c.start, c.end, c.content) for c in chosen)
        ]
        spans = [(e.start, e.end) for e in new]
        if any(_overlaps(s, o) for s in spans for o in taken) or any(
            _overlaps(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :]
        ):
            continue
        taken += spans
        chosen += new
        applied += 1
    for edit in sorted(chosen, key=lambda e: (e.start, e.end), reverse=True):
        text = text[: edit.start] + edit.content + text[edit.end :]
    return text, applied


def test_fixes_sharing_an_identical_edit_all_apply():
    from enslint.engine.apply import apply_fixes
    from enslint.findings import Applicability, Edit, Fix, Form

    helper = Edit(0, 0, "H\n", 1, 1, 1, 1)
    fixes = [
        Fix(Applicability.UNSAFE, "m", (helper, Edit(i, i + 1, "X", 1, i + 1, 1, i + 2)), Form.VMAP)
        for i in range(2, 8, 2)
    ]
    result = apply_fixes("abcdefgh", fixes)
    assert (result.text, result.applied, result.skipped) == ("H\nabXdXfXh", 3, 0)


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 30), st.integers(0, 4), st.sampled_from(["", "x", "yy", "H\n"])),
            min_size=1,
            max_size=3,
        ),
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_applying_fixes_matches_the_one_by_one_oracle(raw):
    from enslint.engine.apply import apply_fixes
    from enslint.findings import Applicability, Edit, Fix, Form

    text = "0123456789" * 4
    fixes = [
        Fix(Applicability.SAFE, "m", tuple(Edit(s, s + w, c, 1, 1, 1, 1) for s, w, c in edits), Form.UNBIND)
        for edits in raw
    ]
    result = apply_fixes(text, fixes)
    assert (result.text, result.applied) == _apply_one_by_one(text, fixes)
