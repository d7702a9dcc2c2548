"""`enslint profile`: ensembles found in a real run, their cost, and what it hands to
`check` (proof) and `verify` (the construction), each through the real command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, expected_findings

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parent.parent


def enslint(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    environment.pop("ENSLINT_NO_CACHE", None)
    return subprocess.run(
        [sys.executable, "-m", "enslint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
    )


@pytest.fixture
def program(tmp_path):
    """A project folder (its own [tool.enslint]) and a function writing its files."""
    (tmp_path / "pyproject.toml").write_text("[tool.enslint]\n")

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return tmp_path, write


def profile_of(folder: Path) -> dict:
    return json.loads((folder / ".enslint" / "profile.json").read_text())


# -- the done-when: profile, then check with it, then verify with no table ------------------
def test_a_config_built_ensemble_is_found_flagged_and_verified(tmp_path):
    project = tmp_path / "config_registry"
    shutil.copytree(FIXTURES / "projects" / "config_registry", project)
    (project / "pyproject.toml").write_text("[tool.enslint]\n")  # its own root, no verify table
    files = sorted(project.glob("*.py"))
    expected = sorted((p.name, line, code) for p in files for line, code in expected_findings(p.read_text(), True))

    before = enslint("check", "--format", "json", ".", cwd=project)
    assert before.returncode == 0 and json.loads(before.stdout) == [], "the source alone proves nothing"

    profiled = enslint("profile", "train.py", cwd=project)
    assert profiled.returncode == 0, profiled.stderr
    assert "step 2: loss" in profiled.stdout  # the program's own output passes through
    (group,) = profile_of(project)["groups"]
    assert (group["cls"], group["collection"], group["members"], group["member_class"]) == (
        "ConfiguredEnsemble",
        "members",
        5,
        "MLP",
    )
    assert (Path(group["path"]).name, group["line"]) == ("ensemble.py", 16)
    assert "ConfiguredEnsemble.forward` runs 5 identical `MLP`" in profiled.stdout

    after = enslint("check", "--format", "json", "--show-details", ".", cwd=project)
    found = json.loads(after.stdout)
    assert sorted((Path(d["filename"]).name, d["location"]["row"], d["code"]) for d in found) == expected
    assert "the profiled run (.enslint/profile.json) saw 5 identical `MLP` members" in found[0]["details"]
    assert found[0]["fix"] is not None and found[0]["fix"]["applicability"] == "unsafe"

    verified = enslint("verify", "--min-time", "0.01", "--format", "json", ".", cwd=project)
    assert verified.returncode == 0, verified.stderr
    (row,) = json.loads(verified.stdout)
    assert row["status"] == "equivalent"
    assert any(note.startswith("built as `enslint profile` captured it") for note in row["notes"])
    assert row["batch"] == 64  # the run's first call, not a default


# -- what is and is not an ensemble at run time ----------------------------------------------
SIBLINGS = """\
    import torch
    from torch import nn


    class Chain(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(8, 8) for _ in range(3))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x


    class Widths(nn.Module):
        def __init__(self, widths=(4, 6, 5)):
            super().__init__()
            self.heads = nn.ModuleList(nn.Linear(8, w) for w in widths)

        def forward(self, x):
            return [head(x) for head in self.heads]


    class Shapes(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleList(nn.Linear(8, 2) for _ in range(3))

        def forward(self, xs):
            return [head(x) for head, x in zip(self.heads, xs)]


    class Named(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({name: nn.Linear(8, 2) for name in ("a", "b", "c")})

        def forward(self, x):
            return torch.stack([head(x) for head in self.heads.values()])


    class Sliced(nn.Module):
        def __init__(self, n=4):
            super().__init__()
            self.members = nn.ModuleList(
                nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1)) for _ in range(n)
            )

        def forward(self, x):
            return torch.cat([member(x[:, i]) for i, member in enumerate(self.members)], 1)


    class Critics(nn.Module):
        def __init__(self, n=3):
            super().__init__()
            self.critics = []
            for i in range(n):
                critic = nn.Linear(8, 1)
                self.add_module(f"critic_{i}", critic)
                self.critics.append(critic)

        def q_values(self, x):
            return torch.stack([critic(x) for critic in self.critics]).min(0).values


    torch.manual_seed(0)
    x = torch.randn(5, 8)
    models = Chain(), Widths(), Shapes(), Named(), Sliced(), Critics()
    for step in range(2):
        loss = models[0](x).sum() + sum(o.sum() for o in models[1](x))
        loss = loss + sum(o.sum() for o in models[2]([x[:2], x[:3], x]))
        loss = loss + models[3](x).sum() + models[4](torch.randn(5, 4, 8)).sum() + models[5].q_values(x).sum()
        loss.backward()
        print(repr(loss.item()))
"""


def test_siblings_that_are_not_ensembles_are_told_apart(program):
    folder, write = program
    write("siblings.py", SIBLINGS)
    result = enslint("profile", "--format", "json", "siblings.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout.splitlines()[-1])
    found = {row["class"]: row for row in rows}
    assert set(found) == {"Named", "Sliced", "Critics"}
    assert found["Named"]["collection"] == "heads" and found["Named"]["members"] == 3  # a ModuleDict
    assert found["Sliced"]["input"] == "slices" and found["Sliced"]["members"] == 4
    assert found["Critics"]["method"] == "q_values" and found["Critics"]["input"] == "same"  # a list + add_module
    assert all(row["calls"] == 2 * row["members"] and row["loops"] == 2 for row in rows)
    assert all(row["share"] > 0 and row["forward_s"] > 0 and row["backward_s"] > 0 for row in rows)
    rejected = {r["line"]: r["reason"] for r in profile_of(folder)["rejected"]}
    assert rejected == {
        11: "a chain: each member takes the previous member's output",
        22: "the members' parameters differ in shape (`weight`: [4, 8] and [6, 8])",
        31: "the members are called with inputs of different shapes",
    }


def test_what_the_program_computes_is_unchanged(program):
    folder, write = program
    write("siblings.py", SIBLINGS)
    plain = subprocess.run([sys.executable, "siblings.py"], cwd=folder, capture_output=True, text=True)
    profiled = enslint("profile", "--format", "json", "siblings.py", cwd=folder)
    assert profiled.stdout.splitlines()[:-1] == plain.stdout.splitlines()  # the losses, to the last bit


def test_the_captured_construction_of_a_method_other_than_forward(program):
    folder, write = program
    write("siblings.py", SIBLINGS)
    enslint("profile", "siblings.py", cwd=folder)
    captures = {c["cls"]: c for c in profile_of(folder)["captures"]}
    assert captures["Critics"]["method"] == "q_values" and captures["Critics"]["inputs"] == [[5, 8]]
    assert captures["Critics"]["init"] == {"n": 3}
    assert captures["Sliced"]["inputs"] == [[5, 4, 8]] and captures["Sliced"]["dtypes"] == ["float32"]


def test_arguments_json_cannot_hold_are_pickled_and_verify_loads_them(program):
    folder, write = program
    write(
        "model.py",
        """\
        from dataclasses import dataclass

        import torch
        from torch import nn


        @dataclass
        class Sizes:
            d_in: int
            d_out: int
            n: int


        def make(sizes):
            return nn.Linear(sizes.d_in, sizes.d_out)


        class Heads(nn.Module):
            def __init__(self, sizes: Sizes):
                super().__init__()
                self.heads = nn.ModuleList([make(sizes) for _ in range(sizes.n)][: sizes.n])

            def forward(self, x):
                return torch.stack([head(x) for head in self.heads], 1)
        """,
    )
    write(
        "run.py",
        """\
        import torch
        from model import Heads, Sizes

        model = Heads(Sizes(6, 2, 4))
        model(torch.randn(16, 6)).sum().backward()
        """,
    )
    assert enslint("profile", "run.py", cwd=folder).returncode == 0
    (capture,) = [c for c in profile_of(folder)["captures"] if c["cls"] == "Heads"]
    assert capture["init"] is None and capture["init_pickle"].endswith(".pickle")
    assert (folder / ".enslint" / "captures" / capture["init_pickle"]).is_file()
    verified = enslint("verify", "--min-time", "0.01", "--format", "json", "model.py", cwd=folder)
    (row,) = json.loads(verified.stdout)
    assert row["status"] == "equivalent", (row, verified.stderr)
    assert row["batch"] == 16


# -- how the program ends ----------------------------------------------------------------------
RAISES = """\
    import torch
    from torch import nn

    heads = nn.ModuleList(nn.Linear(4, 1) for _ in range(3))
    holder = nn.Module()
    holder.heads = heads
    x = torch.randn(2, 4)
    torch.stack([h(x) for h in holder.heads]).sum().backward()


    def fail():
        raise ValueError("the data file is missing")


    fail()
"""


def test_a_script_that_raises_keeps_its_traceback_and_status(program):
    folder, write = program
    write("raises.py", RAISES)
    result = enslint("profile", "raises.py", cwd=folder)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "Traceback (most recent call last):"
    assert 'File "' in result.stderr and "raises.py" in result.stderr and "enslint" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "ValueError: the data file is missing"
    assert profile_of(folder)["groups"][0]["members"] == 3  # written all the same
    assert profile_of(folder)["exit_status"] == 1


def test_the_exit_status_and_arguments_pass_through(program):
    folder, write = program
    write("exits.py", "import sys\nprint(sys.argv[1:])\nsys.exit(3)\n")
    result = enslint("profile", "exits.py", "--lr", "0.1", "data", cwd=folder)
    assert result.returncode == 3
    assert result.stdout.splitlines()[0] == "['--lr', '0.1', 'data']"


def test_a_module_runs_as_python_m_runs_it(program):
    folder, write = program
    (folder / "pkg").mkdir()
    write("pkg/__init__.py", "")
    write("pkg/__main__.py", RAISES.replace("fail()\n", "print('ran as', __name__)\n"))
    result = enslint("profile", "-m", "pkg", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "ran as __main__" in result.stdout
    assert profile_of(folder)["program"] == ["-m", "pkg"]


FOREVER = """\
    import torch
    from torch import nn

    heads = nn.ModuleList(nn.Linear(4, 1) for _ in range(3))
    holder = nn.Module()
    holder.heads = heads
    x = torch.randn(2, 4)
    while True:
        torch.stack([h(x) for h in holder.heads]).sum().backward()
"""


def test_max_seconds_stops_a_program_that_never_ends(program):
    folder, write = program
    write("forever.py", FOREVER)
    started = time.monotonic()
    result = enslint("profile", "--max-seconds", "2", "forever.py", cwd=folder, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert "stopped after 2 s (--max-seconds)" in result.stdout
    (group,) = profile_of(folder)["groups"]
    assert group["loops"] > 10 and group["share"] > 0.05


def profiling_forever(folder: Path, write) -> subprocess.Popen:
    """`enslint profile` on a program that never ends, once its loop runs."""
    write("forever.py", FOREVER.replace("    while True:", "    print('looping', flush=True)\n    while True:"))
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "enslint", "profile", "forever.py"],
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "looping\n"
    time.sleep(0.5)
    return process


def test_ctrl_c_writes_what_was_gathered(program):
    folder, write = program
    process = profiling_forever(folder, write)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "interrupted (Ctrl-C)" in stdout
    assert profile_of(folder)["groups"][0]["members"] == 3


def test_a_damaged_profile_is_one_line_and_status_2(program):
    folder, write = program
    write("heads.py", "x = 1\n")
    (folder / ".enslint").mkdir()
    (folder / ".enslint" / "profile.json").write_text("{not json")
    result = enslint("check", ".", cwd=folder)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot read the profile" in result.stderr


def test_profile_names_a_missing_script_in_one_line(program):
    folder, _ = program
    result = enslint("profile", "nowhere.py", cwd=folder)
    assert result.returncode == 2 and result.stderr.strip() == "enslint: error: nowhere.py: no such script"


def test_torchscript_and_torch_compile_still_work_under_the_hooks(program):
    """The watched members' forward keeps the original's source and globals:
    TorchScript compiles it, dynamo traces through it."""
    folder, write = program
    write(
        "scripted.py",
        """\
        import torch
        from torch import nn


        class Heads(nn.Module):
            def __init__(self):
                super().__init__()
                self.heads = nn.ModuleList(nn.Linear(4, 2) for _ in range(3))

            def forward(self, x):
                outs = []
                for head in self.heads:
                    outs.append(head(x))
                return torch.stack(outs)


        model = Heads()
        x = torch.randn(2, 4)
        print(torch.equal(torch.jit.script(model)(x), model(x)))
        print(torch.equal(torch.compile(model, backend="eager")(x), model(x)))
        """,
    )
    result = enslint("profile", "scripted.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["True", "True"]


def test_sigterm_writes_what_was_gathered(program):
    folder, write = program
    process = profiling_forever(folder, write)
    started = time.monotonic()
    process.terminate()
    stdout, _ = process.communicate(timeout=30)
    assert process.returncode == 143
    assert time.monotonic() - started < 5
    assert "terminated (SIGTERM)" in stdout
    assert profile_of(folder)["groups"][0]["members"] == 3
