"""What `enslint profile` prints: the groups by their share of the run, what they cost,
and, where `check` has a fix and `verify` has timed it, the gain to expect."""

from __future__ import annotations

import json

from enslint.profiles import Group, shown_path
from enslint.profiling.command import Outcome


def _where(group: Group) -> str:
    return f"{shown_path(group.path)}:{group.line}"


def _gain(outcome: Outcome, group: Group) -> float | None:
    """The share of a step (of the run, without steps) a fix would save: the group's
    time, less a 1/speed-up of it."""
    measured = outcome.gains.get((group.path, group.line))
    if measured is None or not measured[2]:
        return None  # verify recommends keeping the loop, or saw no clear difference
    # verify's speed-up is of the whole method, so it applies to the method's share.
    applies_to = group.class_step_share if group.class_step_share is not None else _share(group)
    return applies_to * (1 - 1 / measured[0])


def _per_step(group: Group) -> str:
    return f" ({group.calls_per_step:g} per step)" if group.calls_per_step else ""


def _of(group: Group) -> str:
    return "each step" if group.step_share is not None else "this run"


def _share(group: Group) -> float:
    return group.step_share if group.step_share is not None else group.share


def as_json(outcome: Outcome) -> str:
    rows = []
    for group in outcome.profile.groups:
        fix = outcome.fixes.get((group.path, group.line))
        measured = outcome.gains.get((group.path, group.line))
        rows.append(
            {
                "path": shown_path(group.path),
                "line": group.line,
                "class": group.cls,
                "method": group.method,
                "collection": group.collection,
                "holder": group.holder,
                "members": group.members,
                "member_class": group.member_class,
                "input": group.input,
                "share": round(group.share, 4),
                "step_share": _rounded(group.step_share),
                "class_step_share": _rounded(group.class_step_share),
                "calls_per_step": _rounded(group.calls_per_step),
                "calls": group.calls,
                "calls_per_loop": group.calls // max(group.loops, 1),
                "loops": group.loops,
                "forward_s": round(group.forward_s, 6),
                "backward_s": round(group.backward_s, 6),
                "fix": fix.code if fix is not None else None,
                "verify_speedup": measured[0] if measured else None,
                "expected_saving": _rounded(_gain(outcome, group)),
            }
        )
    return json.dumps(rows)  # one line: the last of standard output, after the program's own


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def as_text(outcome: Outcome) -> str:
    profile = outcome.profile
    lines = [
        f"{' '.join(profile.program)}: {outcome.ending.how} ({profile.wall_s:.2f} s); "
        f"the hooks' own code took {profile.hooks_s:.3f} s of it ({profile.hooks_s / max(profile.wall_s, 1e-9):.1%}; "
        "torch's slower path for hooked modules is not counted)"
    ]
    if profile.step_s is not None:
        lines.append(
            f"{profile.steps} optimizer steps, {profile.step_s * 1e3:.1f} ms each after the first; shares are of a step"
        )
    else:
        lines.append("No optimizer stepped twice: shares are of the whole run")
    if not profile.groups:
        lines.append("No loop over identical sibling modules ran.")
    for group in profile.groups:
        name = f"`{group.cls}.{group.method}`" if group.cls else "the file's top-level code"
        collection = group.collection if group.holder == group.cls else f"{group.holder}.{group.collection}"
        input_ = "one input" if group.input == "same" else "slices of one tensor"
        lines.append(
            f"{_share(group):6.1%}  {_where(group)}: {name} runs {group.members} identical `{group.member_class}` "
            f"of `{collection}` one by one on {input_}: "
            f"{_count(group.calls, 'call')} in {_count(group.loops, 'loop')}{_per_step(group)}, "
            f"forward {group.forward_s * 1e3:.1f} ms, backward {group.backward_s * 1e3:.1f} ms"
        )
        fix = outcome.fixes.get((group.path, group.line))
        measured = outcome.gains.get((group.path, group.line))
        saving = _gain(outcome, group)
        if fix is not None and measured is not None and saving is None:
            lines.append(
                f"        {fix.code} has a fix; verify measured it {measured[0]:.2f}x per training step on "
                f"{measured[1]} and recommends no rewrite there: no clear gain to expect"
            )
        elif fix is not None and measured is not None and saving is not None:
            whole = f" (`{group.method}` takes {group.class_step_share:.1%})" if group.class_step_share else ""
            lines.append(
                f"        {fix.code} has a fix; verify measured `{group.cls}.{group.method}` {measured[0]:.2f}x faster "
                f"per training step on {measured[1]}: about {saving:.1%} of {_of(group)} saved{whole}"
            )
        elif fix is not None:
            lines.append(f"        {fix.code} has a fix; `enslint verify` measures what it saves")
    for rejected in profile.rejected:
        where = f"{shown_path(rejected.path)}:{rejected.line}"
        lines.append(f"    not an ensemble: {where} `{rejected.collection}`: {rejected.reason}")
    if profile.file is not None:
        captured = _count(len(profile.captures), "class", "classes")
        lines.append(f"Profile written to {shown_path(profile.file)} ({captured} captured for verify)")
    return "\n".join(lines)
