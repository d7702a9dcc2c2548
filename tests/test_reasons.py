"""The reasons a rewrite does not apply are data (enslint/rewrites/reasons.py): each is
worded once, every call site fills exactly the fields its text names, none is dead, and
what a finding says of it (`no_fix`) is in its details."""

from __future__ import annotations

import ast
import json
import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES

from enslint.rewrites.catalogue import reasons_said_by
from enslint.rewrites.reasons import NOT_APPLICABLE, Kind, Reason, reject
from enslint.rewrites.registry import Offer
from enslint.rules import ALL_RULES

PACKAGE = Path(__file__).resolve().parent.parent / "enslint"


def fields_of(reason: Reason) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(reason.text) if name}


def reject_calls() -> list[tuple[Path, int, str, set[str] | None]]:
    """Every `reject(Reason.X, ...)` in the package: (file, line, X, the keywords passed;
    None where they are unpacked from elsewhere)."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "reject"):
                continue
            first = node.args[0]
            assert isinstance(first, ast.Attribute), f"{path}:{node.lineno}: reject() takes a Reason member"
            passed = {k.arg for k in node.keywords if k.arg is not None}
            unpacked = any(k.arg is None for k in node.keywords)
            calls.append((path, node.lineno, first.attr, None if unpacked else passed))
    return calls


def test_every_reject_call_fills_exactly_the_fields_its_text_names():
    wrong = [
        f"{path.name}:{line}: {name} names {sorted(fields_of(Reason[name]))}, given {sorted(passed)}"
        for path, line, name, passed in reject_calls()
        if passed is not None and passed != fields_of(Reason[name])
    ]
    assert not wrong, wrong


def test_every_reason_is_given_somewhere():
    source = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "reasons.py")
    unused = [reason.name for reason in Reason if reason is not Reason.NOT_THIS_FORM and f"Reason.{reason.name}" not in source]
    assert not unused, unused


def test_a_reason_is_worded_once():
    texts = [reason.text for reason in Reason]
    assert len(texts) == len(set(texts)), sorted(t for t in texts if texts.count(t) > 1)


def test_notes():
    plain = reject(Reason.PASSED_IN)
    assert plain.note == "no fused rewrite: the members are passed in by the caller"
    standalone = reject(Reason.WIDE_MEMBERS, kind="`nn.GRU`")
    assert standalone.note == "no automatic fix yet for `nn.GRU` members"
    assert Offer((), plain).note == plain.note
    assert Offer((), NOT_APPLICABLE).note == "no fused rewrite: the loop is not the shape this form rewrites"
    assert Offer((), None).note is None
    # The call-time fix, offered because the rejection rules out the fused storage.
    assert Offer((), plain, kept=True).note == "members kept and stacked at each call: the members are passed in by the caller"


def test_quiet_reasons_are_never_said():
    from enslint.rewrites.registry import said

    assert said(reject(Reason.STACKED_MEMBERS)) is None
    assert said(NOT_APPLICABLE) is None
    assert said(reject(Reason.PASSED_IN)) is not None
    assert {r.kind for r in Reason} == set(Kind)


@pytest.fixture(scope="module")
def fixture_findings() -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "enslint", "check", FIXTURES.name, "--no-cache", "--format", "json"],
        cwd=FIXTURES.parent,
        capture_output=True,
        text=True,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def test_no_fix_is_what_the_details_say(fixture_findings):
    with_reason = [d for d in fixture_findings if d["no_fix"]]
    assert with_reason, "the fixtures hold findings with no fused rewrite"
    for d in fixture_findings:
        if d["no_fix"]:
            assert f"({d['no_fix']})" in d["details"], (d["filename"], d["no_fix"])


def test_every_finding_without_a_fix_says_why(fixture_findings):
    """A finding with no fix names its reason, unless its members are one shared
    instance (nothing to fuse)."""
    silent = [
        (Path(d["filename"]).name, d["location"]["row"], d["code"])
        for d in fixture_findings
        if d["fix"] is None and not d["no_fix"] and "one shared" not in d["details"] and d["code"] != "ENS000"
    ]
    assert not silent, silent


# -- the rule pages list the reasons each rule's offer can give (rewrites/catalogue.py) -----
def _matches(text: str, reason: Reason) -> bool:
    """Whether `text` is `reason`'s text with its fields filled in."""
    pattern = "".join(
        re.escape(literal) + ("(.+?)" if field is not None else "")
        for literal, field, _, _ in string.Formatter().parse(reason.text)
    )
    return re.fullmatch(pattern, text) is not None


def test_every_reason_a_fixture_finding_gives_is_on_its_rules_page(fixture_findings):
    pages = {rule.code: reasons_said_by(rule.offered_by) for rule in ALL_RULES if rule.offered_by}
    given = [d for d in fixture_findings if d["no_fix"]]
    assert given
    for d in given:
        # The note opens with the rule's words, unless the reason's text says it all.
        openings = ("", "no fused rewrite: ", "no automatic fix: ", "members kept and stacked at each call: ")
        texts = {d["no_fix"].removeprefix(opening) for opening in openings}
        assert any(_matches(t, r) for t in texts for r in pages[d["code"]]), (d["code"], d["no_fix"])


def test_every_said_reason_is_on_some_rules_page():
    listed = {reason for rule in ALL_RULES if rule.offered_by for reason in reasons_said_by(rule.offered_by)}
    said = {reason for reason in Reason if reason.kind in (Kind.BLOCKED, Kind.MEMBERS)}
    assert said == listed, sorted(r.name for r in said ^ listed)


def test_a_page_lists_only_what_its_offer_reaches():
    """ENS003's offer is the unbind fix alone: its page lists the unbind reasons, not the
    fused forms' nor a reason the registry only looks up."""
    unbind = {r.name for r in reasons_said_by("slice_gradient_offer")}
    assert unbind == {"UNBIND_MIXED_SLICES", "UNBIND_SEVERAL_TENSORS", "UNBIND_NO_INDEX", "UNBIND_TENSOR_VARIES"}
    assert Reason.NEST_ON_INNER_FINDING in reasons_said_by("slices_offer")
    assert Reason.NEST_ON_INNER_FINDING not in reasons_said_by("same_input_offer")
