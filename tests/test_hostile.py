"""What a hostile user does (issue 21), built for real: other processes editing files
while `--fix` runs, signals to the process group and to the main process, files that
cannot be written. No mock of the operating system: subprocesses, threads and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES

SOURCE = (FIXTURES / "positive" / "seed_independent_mlps.py").read_text()


def tree(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"model_{i:02d}.py"
        path.write_text(SOURCE)
        paths.append(path)
    return paths


def enslint(*args: str, cwd: Path, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "enslint", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal gives a command
        **kwargs,
    )


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc (the test runs where /proc is)."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
                pending.append(int(entry.name))
    return found


def in_session(session: int) -> list[int]:
    """The live processes of a session (a group started with start_new_session)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry.name))
    return found


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


# -- 1. a concurrent edit is never lost ----------------------------------------------------
# An editor that saves the moment enslint starts to write: it watches for enslint's
# temporary file beside each source and appends a line to the source as soon as it sees
# one, which is the window between enslint's last look at the file and its rename. With
# a pause, it holds the file open across that window, writing after enslint's swap.
EDITOR = r"""
import os, sys, time
folder, stop, log, pause = sys.argv[1:5]
seen = set()
with open(log, "a") as record:
    open(log + ".ready", "w").close()  # watching: enslint may start
    while not os.path.exists(stop):
        for entry in os.scandir(folder):
            if entry.name.startswith(".model_") and entry.name.endswith(".enslint-tmp"):
                target = entry.name[1:].split(".py.")[0] + ".py"
                if target not in seen:
                    seen.add(target)
                    line = f"# saved by the editor: {target}\n"
                    with open(os.path.join(folder, target), "a") as stream:
                        time.sleep(float(pause))
                        stream.write(line)
                    record.write(target + "\n")
                    record.flush()
"""


@pytest.mark.parametrize("pause", ["0", "0.005"], ids=["saves at once", "holds the file open across the swap"])
def test_edits_made_while_fix_writes_are_all_kept(tmp_path, pause):
    """Every line the editor wrote is in its file at the end; a file whose change
    enslint saw is named, and the exit status is not 0."""
    tree(tmp_path / "src", 30)
    stop, log = tmp_path / "stop", tmp_path / "edited.txt"
    editor = subprocess.Popen([sys.executable, "-c", EDITOR, str(tmp_path / "src"), str(stop), str(log), pause])
    try:
        # On a loaded machine the editor's interpreter can start after enslint is done.
        deadline = time.monotonic() + 60
        while not (tmp_path / "edited.txt.ready").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        run = enslint("check", "src", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
        _, stderr = run.communicate(timeout=300)
    finally:
        stop.touch()
        editor.wait(timeout=30)
    edited = log.read_text().split() if log.exists() else []
    assert edited, "the editor never saw enslint write"
    lost = [name for name in edited if f"# saved by the editor: {name}" not in (tmp_path / "src" / name).read_text()]
    assert not lost, f"{len(lost)} of {len(edited)} edits lost: {lost}"
    named = [name for name in edited if f"src/{name} changed while enslint was fixing it" in stderr]
    assert named and run.returncode != 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="write leases are Linux's")
def test_a_file_another_program_holds_open_is_left_as_it_is(tmp_path):
    """What that program writes later would go to the replaced file: enslint does not
    replace it, names it, and fixes the others."""
    held, free = tree(tmp_path / "src", 2)
    with open(held, "a") as stream:
        run = enslint("check", "src", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
        _, stderr = run.communicate(timeout=300)
        stream.write("# written later by the program that held it open\n")
    assert held.read_text() == SOURCE + "# written later by the program that held it open\n"
    assert free.read_text() != SOURCE
    assert f"src/{held.name}: not written: open in another program; left as it is" in stderr, stderr
    assert run.returncode == 2 and "Traceback" not in stderr


# -- 2 and 3. Ctrl-C and SIGTERM --------------------------------------------------------
def _long_fix(tmp_path: Path) -> tuple[subprocess.Popen, list[Path]]:
    paths = tree(tmp_path / "src", 120)
    run = enslint("check", "src", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    # Until the first file is rewritten: the run is in its writing phase.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and all(path.read_text() == SOURCE for path in paths):
        time.sleep(0.02)
    return run, paths


@needs_proc
@pytest.mark.parametrize(
    "how, expected",
    [("group-SIGINT", 130), ("SIGTERM", 143)],
    ids=["ctrl-c to the process group", "kill on the main process"],
)
def test_a_signal_during_fix_stops_everything_and_names_what_was_written(tmp_path, how, expected):
    run, paths = _long_fix(tmp_path)
    workers = children_of(run.pid)
    sent = time.monotonic()
    if how == "group-SIGINT":
        os.killpg(run.pid, signal.SIGINT)
    else:
        os.kill(run.pid, signal.SIGTERM)
    _, stderr = run.communicate(timeout=10)
    took = time.monotonic() - sent
    assert took < 2.5, f"{took:.1f} s"
    assert run.returncode == expected, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    rewritten = [path for path in paths if path.read_text() != SOURCE]
    assert rewritten
    for path in rewritten:
        assert f"src/{path.name}" in stderr, stderr  # every rewritten file is named
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and pid in children_of(1) + in_session(run.pid)]
    assert not in_session(run.pid)  # no process of the run is left
    assert not list((tmp_path / "src").glob(".*.enslint-tmp"))
    # The files are whole: rewritten or as they were.
    for path in paths:
        compile(path.read_text(), str(path), "exec")


@needs_proc
def test_sigterm_during_a_plain_check_leaves_no_worker(tmp_path):
    tree(tmp_path / "src", 200)
    run = enslint("check", "src", "--no-cache", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not children_of(run.pid):
        time.sleep(0.01)
    assert children_of(run.pid), "no worker started"
    os.kill(run.pid, signal.SIGTERM)
    run.communicate(timeout=10)
    assert run.returncode == 143
    time.sleep(0.5)
    assert not in_session(run.pid)


@needs_proc
def test_workers_die_with_a_main_process_killed_outright(tmp_path):
    """SIGKILL cannot be handled: the workers notice their parent is gone."""
    tree(tmp_path / "src", 200)
    run = enslint("check", "src", "--no-cache", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not children_of(run.pid):
        time.sleep(0.01)
    os.kill(run.pid, signal.SIGKILL)
    run.communicate(timeout=10)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and in_session(run.pid):
        time.sleep(0.05)
    assert not in_session(run.pid)


# -- 4. a refused write is not reported as fixed -------------------------------------------
def test_a_file_that_cannot_be_written_keeps_its_findings_and_gets_no_helper(tmp_path):
    paths = tree(tmp_path / "src", 2)
    paths[0].chmod(0o444)
    run = enslint("check", "src", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 2
    assert "src/model_00.py: not written: read-only file" in stderr
    assert "All checks passed" not in stdout
    assert "model_00.py:" in stdout  # its findings are still reported
    assert paths[0].read_text() == SOURCE and paths[1].read_text() != SOURCE
    # Alone, the read-only file gets no helper module written for it.
    alone = tree(tmp_path / "alone", 1)
    alone[0].chmod(0o444)
    enslint("check", "alone", "--fix", "--unsafe-fixes", "--no-cache", cwd=tmp_path).communicate(timeout=120)
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == ["model_00.py"]


# -- 8. smaller ----------------------------------------------------------------------------
def test_a_link_to_a_pseudo_file_system_is_not_walked(tmp_path):
    """`/proc` holds entries no one may read (`/proc/1/fdinfo`): a walk that reaches it
    through a link skips it instead of failing."""
    if not Path("/proc/1").exists():
        pytest.skip("needs /proc")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "proc").symlink_to("/proc")
    (tmp_path / "src" / "model.py").write_text(SOURCE)
    run = enslint("check", "src", "--no-cache", "--output-format", "concise", cwd=tmp_path)
    stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr
    assert "internal error" not in stderr and stdout.startswith("src/model.py:")


@pytest.mark.parametrize("args", [["--select", ""], ["--select", ","], ["--ignore", ""]])
def test_an_empty_rule_code_is_a_usage_error(tmp_path, args):
    (tmp_path / "model.py").write_text(SOURCE)
    run = enslint("check", *args, ".", cwd=tmp_path)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2 and "an empty rule code selects nothing" in stderr


def test_an_empty_rule_code_in_the_config_is_a_configuration_error(tmp_path):
    (tmp_path / "model.py").write_text(SOURCE)
    (tmp_path / "pyproject.toml").write_text('[tool.enslint]\nselect = [""]\n')
    run = enslint("check", ".", cwd=tmp_path)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 2 and "'select': an empty rule code selects nothing" in stderr


@pytest.mark.parametrize("output_format", ["text", "concise"])
def test_a_newline_in_a_file_name_stays_on_the_findings_line(tmp_path, output_format):
    (tmp_path / "two\nlines.py").write_text(SOURCE)
    run = enslint("check", ".", "--no-cache", "--output-format", output_format, cwd=tmp_path)
    stdout, _ = run.communicate(timeout=60)
    findings = [line for line in stdout.splitlines() if "ENS00" in line]
    assert findings and all(line.startswith("two\\nlines.py:") for line in findings)


# -- 5 and 6. verify: one bad module costs its own row, prints stay out of the report ---
HEADS = """
import torch
from torch import nn


class NAME(nn.Module):
    def __init__(self, d: int = 8, n: int = 4):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(n)])

    def forward(self, x):
        return torch.cat([h(x) for h in self.heads], dim=-1)
"""


def test_verify_reports_every_class_whatever_one_module_does(tmp_path):
    pytest.importorskip("torch")
    import json

    modules = {
        "good_a.py": "",
        "good_b.py": "",
        "sleeper.py": "import time\ntime.sleep(3600)\n",
        "exiter.py": "import os\nos._exit(3)\n",
        "printer.py": "print('[1, 2, 3]')\nimport ctypes\nctypes.CDLL(None).puts(b'native {')\n",
    }
    for name, start in modules.items():
        class_name = "".join(part.title() for part in name[:-3].split("_"))
        (tmp_path / name).write_text(start + HEADS.replace("NAME", class_name))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "hostile"\n')
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "enslint", "verify", ".", "--device", "cpu", "--format", "json",
         "--min-time", "0.01", "--timeout", "8"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    rows = {row["target"]: row["status"] for row in json.loads(run.stdout)}  # stdout: the report alone
    assert rows["good_a.py::GoodA"] == rows["good_b.py::GoodB"] == rows["printer.py::Printer"] == "equivalent"
    assert rows["sleeper.py::Sleeper"].startswith("error: stopped after 8 s (--timeout)")
    assert rows["exiter.py::Exiter"] == "error: its process exited with status 3 while importing or running the class"
    assert "[1, 2, 3]" in run.stderr and "native {" in run.stderr
    assert run.returncode == 1
    assert time.monotonic() - started < 8 + 120


CALLER = """
import sys
import torch

from enslint.cli import main

if __name__ == "__main__":
    x = torch.randn(600, 600)
    (x @ x).sum()  # torch's thread pool now runs
    sys.exit(main(["verify", "heads.py", "--device", "cpu", "--format", "json", "--min-time", "0.01"]))
"""


def test_verify_finishes_when_its_caller_has_run_torch(tmp_path):
    # A forked worker of a process whose thread pool has run waits forever: verify's
    # workers are fresh interpreters.
    pytest.importorskip("torch")
    import json

    (tmp_path / "heads.py").write_text(HEADS.replace("NAME", "Heads"))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "caller"\n')
    (tmp_path / "caller.py").write_text(CALLER)
    run = subprocess.run([sys.executable, "caller.py"], cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert [row["status"] for row in json.loads(run.stdout)] == ["equivalent"], run.stderr
