"""The code enslint writes keeps to the project's line length, as its formatter would
write it (issue 22 point 4): the wrapper's cases, its agreement with ruff's and black's
formatters where they are installed, the line length read from their configuration, and
the style checks of whole projects before and after `--fix --unsafe-fixes`."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st

from enslint.engine import line_length
from enslint.engine.wrapping import wrap_line, wrap_written

SNAPSHOTS = Path(__file__).parent / "snapshots"


def wrapped(line: str, width: int, black: bool = False) -> str:
    return "\n".join(wrap_line(line, width, black))


CASES = [
    # The last bracket pair; its body on one line when it fits.
    (
        "        self.heads = nn.ModuleList([Head(n_embd, head_size, block_size) for _ in range(num_heads)])",
        88,
        """\
        self.heads = nn.ModuleList(
            [Head(n_embd, head_size, block_size) for _ in range(num_heads)]
        )""",
    ),
    # One element per line, with a trailing comma, when the body does not fit either; the
    # lambda's own comma is not split at.
    (
        "        out = vmap_members(zip(self.trend_heads, self.season_heads), lambda a, b: a(b), trend, season, in_dims=(1, 1))",
        60,
        """\
        out = vmap_members(
            zip(self.trend_heads, self.season_heads),
            lambda a, b: a(b),
            trend,
            season,
            in_dims=(1, 1),
        )""",
    ),
    # Where the last pair's head is too long, an earlier pair.
    (
        "        outs = run_stacked_mlp(x, 1, self.members_weights, self.members_biases, self.members_activations).movedim(0, 1)",
        88,
        """\
        outs = run_stacked_mlp(
            x, 1, self.members_weights, self.members_biases, self.members_activations
        ).movedim(0, 1)""",
    ),
    # A chain of two calls after a call: the right-hand side in parentheses, one call a line.
    (
        "        vals = run_stacked_mlp(x, 1, self.weights, self.biases, self.activations).transpose(1, 2).movedim(0, 1)",
        70,
        """\
        vals = (
            run_stacked_mlp(
                x, 1, self.weights, self.biases, self.activations
            )
            .transpose(1, 2)
            .movedim(0, 1)
        )""",
    ),
    # A lone generator argument gets no trailing comma; a comprehension breaks before for.
    (
        "        return sum(member_network_forward(x_chunk) for member_network_forward, x_chunk in zip(self.members, xs))",
        80,
        """\
        return sum(
            member_network_forward(x_chunk)
            for member_network_forward, x_chunk in zip(self.members, xs)
        )""",
    ),
    # An import gets parentheses and one name a line.
    (
        "from ..fused_ensembles import StackedMembers, load_per_head_keys, run_stacked_mlp, vmap_members",
        60,
        """\
from ..fused_ensembles import (
    StackedMembers,
    load_per_head_keys,
    run_stacked_mlp,
    vmap_members,
)""",
    ),
    # A comment line is wrapped at its spaces, never inside brackets or backticks.
    (
        "        # ensemble_size x num_heads `nn.Linear` heads in one weight (groups, in, heads * out)",
        80,
        """\
        # ensemble_size x num_heads `nn.Linear` heads in one weight
        # (groups, in, heads * out)""",
    ),
    # A trailing comment ends the last line; a tool directive stays on the first.
    (
        "        return torch.stack([head(features) for head in self.heads_with_long_name], dim=1)  # keep",
        80,
        """\
        return torch.stack(
            [head(features) for head in self.heads_with_long_name], dim=1
        )  # keep""",
    ),
    (
        "        return torch.stack([head(features) for head in self.heads_with_long_name], dim=1)  # noqa: E501",
        80,
        """\
        return torch.stack(  # noqa: E501
            [head(features) for head in self.heads_with_long_name], dim=1
        )""",
    ),
    # A single-element tuple's comma does not explode it; nothing to split stays as it is.
    ("        y = f(aaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbbbbb, in_dims=(1,))", 40, None),
    ("        some.very_long.attribute_chain.without_any_brackets_at_all", 40, None),
    # A right-hand side with nothing to split at goes in parentheses of its own, where
    # it then fits.
    (
        "    some_very_long_name_without_brackets = another_very_long_name_that_is_long",
        48,
        """\
    some_very_long_name_without_brackets = (
        another_very_long_name_that_is_long
    )""",
    ),
    ("        some_very_long_name_without_brackets = another_very_long_name_that_is_long", 40, None),
]


@pytest.mark.parametrize("line, width, expected", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_wrap_line(line, width, expected):
    if expected is None:
        result = wrap_line(line, width)
        if line.endswith("(1,))"):
            assert result == [
                "        y = f(",
                "            aaaaaaaaaaaaaaaaaaaa,",
                "            bbbbbbbbbbbbbbbbbbbbbbb,",
                "            in_dims=(1,),",
                "        )",
            ]
        else:
            assert result == [line]
        return
    assert wrapped(line, width) == expected


def _nested(line: str) -> str:
    """`line` inside blocks deep enough for its indentation, as a file a formatter takes."""
    depth = (len(line) - len(line.lstrip())) // 4
    head = "".join("    " * k + "if x:\n" for k in range(depth))
    return head + line + "\n"


@pytest.mark.parametrize("line, width, expected", [c for c in CASES if c[2] is not None and "#" not in c[0]])
def test_cases_are_what_ruffs_formatter_writes(line, width, expected):
    result = subprocess.run(
        [*_tool("ruff"), "format", "--no-cache", "--line-length", str(width), "-"],
        input=_nested(line),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == _nested(expected)


def test_a_line_that_fits_is_left_alone():
    line = "        return torch.stack([h(x) for h in self.heads], dim=1)"
    assert wrap_line(line, 88) == [line]


def test_black_splits_a_commented_line_at_its_last_bracket():
    """Where ruff's formatter and black's differ, the project's formatter decides."""
    line = "        return run_stacked_mlp(obs, None, self.members_weights, self.members_biases).mean(0)  # expect"
    assert wrap_line(line, 80) == [
        "        return run_stacked_mlp(",
        "            obs, None, self.members_weights, self.members_biases",
        "        ).mean(0)  # expect",
    ]
    assert wrap_line(line, 80, black=True) == [
        "        return run_stacked_mlp(",
        "            obs, None, self.members_weights, self.members_biases",
        "        ).mean(",
        "            0",
        "        )  # expect",
    ]


def _generated_statements() -> list[str]:
    """Every long statement line in the snapshots' originals' fixes (the code enslint
    writes), unwrapped: the snapshots hold them wrapped at 88."""
    lines = []
    for path in sorted(SNAPSHOTS.rglob("*.snap")):
        for line in path.read_text().splitlines():
            if len(line) > 60 and line.strip() and not line.strip().startswith(("#", '"', "'")):
                lines.append(line)
    return lines


@settings(max_examples=300, deadline=None)
@given(line=st.sampled_from(_generated_statements()), width=st.integers(30, 120))
def test_wrapping_never_changes_what_the_code_means(line, width):
    result = wrap_line(line, width)
    code = textwrap.dedent(line).strip()
    if result == [line]:
        return
    try:
        before = ast.dump(ast.parse(textwrap.dedent(line) + ("\n    pass" if code.endswith(":") else "")))
    except SyntaxError:
        return  # a line of a statement that goes on: not one the engine wraps
    after_text = textwrap.dedent("\n".join(result))
    after = ast.dump(ast.parse(after_text + ("\n    pass" if code.endswith(":") else "")))
    assert before == after


def test_wrap_written_touches_only_what_the_fix_wrote():
    text = (
        "def f(self):\n"
        "    untouched = some_function_with_a_long_name(argument_one, argument_two, argument_three)\n"
        "    written = some_function_with_a_long_name(argument_one, argument_two, argument_three)\n"
        "    s = '''a string long enough to be wrapped if it were code, which it is not, no no'''\n"
    )
    start = text.index("    written")
    out = wrap_written(text, ((start, start + 20),), 60)
    assert "    untouched = some_function_with_a_long_name(argument_one" in out
    assert (
        "    written = some_function_with_a_long_name(\n        argument_one, argument_two, argument_three\n    )\n"
        in out
    )
    string = text.index("    s = ")
    assert wrap_written(text, ((string, string + 40),), 60) == text
    # An insertion after a statement starts with its line break: that line is the user's.
    end = text.index("\n", text.index("    untouched"))
    assert wrap_written(text, ((end, end + 1),), 60) == text


def test_a_statement_replaced_inside_the_users_wrapped_call_is_wrapped_whole():
    text = (
        "def f(self, x, mask):\n"
        "    return vmap_members(self.scorers, lambda s: s(x, mask), in_dims=()).sum(0) / len(\n"
        "        scorers\n"
        "    )\n"
    )
    start = text.index("vmap_members")
    out = wrap_written(text, ((start, start + 70),), 79)
    assert max(len(line) for line in out.splitlines()) <= 79
    assert ast.dump(ast.parse(out)) == ast.dump(ast.parse(text))


# -- the line length, from the formatter's configuration ---------------------------------
@pytest.fixture(autouse=True)
def fresh_styles():
    line_length._for_folder.cache_clear()
    yield
    line_length._for_folder.cache_clear()


@pytest.mark.parametrize(
    "files, expected",
    [
        ({"pyproject.toml": "[tool.ruff]\nline-length = 100\n"}, (100, False)),
        ({"pyproject.toml": "[tool.black]\nline-length = 79\n"}, (79, True)),
        ({"pyproject.toml": "[tool.ruff]\nline-length = 110\n[tool.black]\nline-length = 79\n"}, (110, False)),
        ({"pyproject.toml": "[tool.ruff.lint]\nselect = ['E']\n"}, (88, False)),  # ruff's default
        ({"ruff.toml": "line-length = 120\n", "pyproject.toml": "[tool.black]\nline-length = 79\n"}, (120, False)),
        ({".ruff.toml": "line-length = 96\n"}, (96, False)),
        ({"pyproject.toml": "[project]\nname = 'x'\n"}, (88, False)),
        ({"pyproject.toml": "not toml ["}, (88, False)),
        ({"pyproject.toml": "[tool.ruff]\nline-length = 'long'\n"}, (88, False)),
    ],
)
def test_line_length_comes_from_the_formatters_configuration(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pkg").mkdir()
    assert tuple(line_length.style_for(str(tmp_path / "pkg" / "m.py"))) == expected


def test_the_search_stops_at_the_repository_root(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    assert line_length.style_for(str(repo / "m.py")) == (88, False)
    assert line_length.style_for(str(tmp_path / "m.py")) == (100, False)


# -- whole projects: style checks before and after --fix ---------------------------------
STYLE_RULES = "E501,E301,E302,E303,E304,E305,E306"


def _tool(name: str) -> list[str]:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (it is in the test extra)")
    return [found]


def _problems(project: Path, width: int) -> int:
    result = subprocess.run(
        [
            *_tool("ruff"),
            "check",
            "--preview",
            "--no-cache",
            "--select",
            STYLE_RULES,
            "--line-length",
            str(width),
            "--output-format",
            "concise",
            "--exit-zero",
            "pkg",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return sum(1 for line in result.stdout.splitlines() if line.startswith("pkg/"))


def _project(tmp_path: Path, config: str) -> Path:
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "positive", project / "pkg")
    (project / "pyproject.toml").write_text(config)
    return project


def _fix(project: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "enslint", "check", "pkg", "--fix", "--unsafe-fixes", "--no-cache", "-q"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert any(path.name == "fused_ensembles.py" for path in (project / "pkg").iterdir())  # it fixed


def test_fixes_add_no_style_problems_at_the_projects_line_length(tmp_path):
    project = _project(tmp_path, "[tool.ruff]\nline-length = 100\n")
    before = _problems(project, 100)
    _fix(project)
    assert _problems(project, 100) <= before


def test_ruffs_formatter_changes_nothing_the_fixes_wrote(tmp_path):
    project = _project(tmp_path, "[tool.ruff]\nline-length = 100\n")
    subprocess.run([*_tool("ruff"), "format", "--no-cache", "-q", "pkg"], cwd=project, check=True)
    _fix(project)
    check = subprocess.run(
        [*_tool("ruff"), "format", "--no-cache", "--diff", "pkg"], cwd=project, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    assert _problems(project, 100) == 0


def test_blacks_formatter_changes_nothing_the_fixes_wrote_at_79(tmp_path):
    project = _project(tmp_path, "[tool.black]\nline-length = 79\n")
    subprocess.run([*_tool("black"), "-q", "pkg"], cwd=project, check=True)
    before = _problems(project, 79)  # the fixtures' docstrings are longer than 79
    _fix(project)
    check = subprocess.run(
        [*_tool("black"), "--check", "--diff", "-q", "pkg"], cwd=project, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout
    assert _problems(project, 79) <= before
