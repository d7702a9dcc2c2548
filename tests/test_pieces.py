"""A big file is analysed in pieces (analysis/pieces.py): the same findings and fixes as
the whole file, in the file's own lines and offsets.

The pieces are forced small here (every top-level statement a piece of its own, never
falling back to the whole file), so every fixture and every project tests the cutting,
the context each piece needs, and the mapping back."""

from __future__ import annotations

import ast

import pytest
from conftest import FIXTURES

import enslint.analysis.pieces as pieces
from enslint.checking import FileJob, check_bytes
from enslint.config import Config
from enslint.engine.apply import apply_fixes
from enslint.rules import Settings
from enslint.runner import make_jobs, run

CODES = Config(root=FIXTURES).enabled_codes()
FILES = sorted(FIXTURES.rglob("*.py"))


def _whole(monkeypatch) -> None:
    monkeypatch.setattr(pieces, "PIECE_BYTES", 10**12)


def _cut_small(monkeypatch) -> None:
    monkeypatch.setattr(pieces, "PIECE_BYTES", 0)
    monkeypatch.setattr(pieces, "MOST", 10.0)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(FIXTURES)) for p in FILES])
def test_pieces_find_what_the_whole_file_finds(path, monkeypatch):
    job = FileJob(path.name, str(path), CODES, Settings())
    data = path.read_bytes()
    _whole(monkeypatch)
    whole = check_bytes(job, data)
    _cut_small(monkeypatch)
    assert check_bytes(job, data) == whole


@pytest.mark.parametrize("project", ["rl_critics", "transformer_heads", "module_attributes"])
def test_pieces_of_a_project_see_the_other_files(project, monkeypatch):
    folder = FIXTURES / "projects" / project
    files = sorted(folder.rglob("*.py"))
    assert files
    _whole(monkeypatch)
    whole = run(make_jobs(files, Config(root=folder), FIXTURES, use_cache=False))
    assert whole
    _cut_small(monkeypatch)
    assert run(make_jobs(files, Config(root=folder), FIXTURES, use_cache=False)) == whole


# Classes that need other top-level statements: a helper function, a base class, a
# member class, a call site that proves passed-in members alike; {n} makes names unique.
TEMPLATE = """
def clones_{n}(module, k):
    return nn.ModuleList([copy.deepcopy(module) for _ in range(k)])


class Member{n}(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 1))

    def forward(self, x):
        return self.body(x)


class Heads{n}(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.heads = nn.ModuleList([nn.Linear(d, 1) for _ in range(k)])

    def forward(self, x):
        return torch.cat([head(x) for head in self.heads], dim=-1)


class Cloned{n}(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.members = clones_{n}(Member{n}(d), k)

    def forward(self, x):
        return torch.stack([m(x) for m in self.members], dim=1)


class Derived{n}(Heads{n}):
    def score(self, x):
        return self.forward(x).sum(-1)


class PerSlice{n}(nn.Module):
    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        outs = []
        for i, member in enumerate(self.members):
            outs.append(member(x[:, i, :]))
        return torch.stack(outs, dim=1)


def build_{n}(d=4, k=3):
    return PerSlice{n}([Member{n}(d) for _ in range(k)])
"""


def test_a_big_file_is_cut_and_its_fixes_land_where_the_whole_files_do(monkeypatch):
    monkeypatch.setattr(pieces, "PIECE_BYTES", 8 * 1024)
    source = "import copy\n\nimport torch\nfrom torch import nn\n" + "\n".join(TEMPLATE.format(n=n) for n in range(30))
    cut = pieces.split(ast.parse(source), source)
    assert cut is not None and len(cut) > 3
    job = FileJob("big.py", "big.py", CODES, Settings())
    split = check_bytes(job, source.encode())
    _whole(monkeypatch)
    whole = check_bytes(job, source.encode())
    assert len(whole) >= 3 * 30  # Heads, Cloned, PerSlice (Derived runs Heads.forward)
    assert split == whole
    fixes = [d.fix_for(True) for d in whole if d.fix_for(True) is not None]
    assert (
        apply_fixes(source, fixes).text == apply_fixes(source, [d.fix_for(True) for d in split if d.fix_for(True)]).text
    )


def test_a_fix_reaching_over_left_out_text_is_dropped_not_misplaced():
    from enslint.analysis.pieces import Piece, _Segment

    piece = Piece("a = 1\nb = 2\n", [_Segment(1, 1), _Segment(5, 5)], {1}, set(), set(), True, "b = 2\n")
    file_starts = [0, 6, 12, 18, 24, 30]
    assert piece.file_offset(6, file_starts) == (24, 1)  # line 2 of the piece is line 5 of the file
    assert piece.file_offset(6, file_starts, end=True) == (6, 0)  # an end there closes line 1
    assert not piece.adjacent(0, 1)


def _fields(segments) -> list[tuple]:
    return [(s.first, s.last, s.defines, s.uses, s.imports, s.definition, s.classes, s.called) for s in segments]


SOURCES = [text for p in FILES if ast.parse(text := p.read_text()).body]


def test_chunks_described_one_by_one_give_the_segments_of_one_parse(monkeypatch):
    """A big file's statements are described chunk by chunk (never one tree of the whole
    file); joined, they are the segments of one parse of it: every fixture, and all of
    them as one file, cut at every place a chunk may start."""
    monkeypatch.setattr(pieces, "CHUNK_BYTES", 1)
    for source in [*SOURCES, "\n\n".join(SOURCES)]:
        parts = pieces.chunks(source)
        assert "".join(text for _, text in parts) == source
        described = [pieces.chunk_segments(ast.parse("\n" * (first - 1) + text), first, text) for first, text in parts]
        assert _fields(pieces.join_chunks(described)) == _fields(
            pieces._segments(ast.parse(source), pieces._line_count(source))
        )


def _big(monkeypatch, source: str, chunk: int):
    """check_bytes of `source` as a big file in chunks of about `chunk` bytes."""
    monkeypatch.setattr(pieces, "PIECE_BYTES", 8 * 1024)
    monkeypatch.setattr(pieces, "CHUNK_BYTES", chunk)
    return check_bytes(FileJob("big.py", "big.py", CODES, Settings()), source.encode())


BIG = "import copy\n\nimport torch\nfrom torch import nn\n" + "\n".join(TEMPLATE.format(n=n) for n in range(30))


@pytest.mark.parametrize(
    "where, insert",
    [
        ("none", ""),
        ("a cut inside a string", 'NOTE = """\n\n\nclass NotAClass:\n    pass\n"""\n'),
        (
            "a decorator apart from its function",
            "@functools.lru_cache(\n    maxsize=None,\n)\n\n\ndef cached():\n    return 1\n",
        ),
        ("a syntax error", "def broken(:\n    pass\n"),
        ("a late future import", "\n\nfrom __future__ import annotations\n"),
        ("a break outside a loop", "def ok():\n    return 1\n\n\nbreak\n"),
        ("an and-chain libcst cannot survive", "y = " + " and ".join(["x"] * 6_000) + "\n"),
    ],
)
def test_a_file_described_in_chunks_is_checked_as_one_parse_checks_it(monkeypatch, where, insert):
    """Where a chunk does not parse on its own, or only the whole file can tell, the file
    is parsed whole: the same findings, and the same ENS000 with Python's own message."""
    middle = BIG.index("def clones_15")
    source = BIG[:middle] + "\n\n" + insert + "\n\n" + BIG[middle:]
    whole = _big(monkeypatch, source, 10**9)
    assert _big(monkeypatch, source, 2 * 1024) == whole
    if where in (
        "a syntax error",
        "a late future import",
        "a break outside a loop",
        "an and-chain libcst cannot survive",
    ):
        assert [d.code for d in whole] == ["ENS000"]
    else:
        assert len(whole) >= 3 * 30
