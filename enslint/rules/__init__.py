"""The rule catalogue. Adding a rule: write its class beside these and list it here.

A rule is a query over the file model (enslint.analysis) that yields findings, with the
fixes the rewrites registry (enslint.rewrites) offers for them. May import:
enslint.analysis, enslint.rewrites, enslint.findings. Never the checker or the engine.
"""

from enslint.rules.base import Finding, Rule, Settings
from enslint.rules.ens001_loop_head_stacking import LoopHeadStacking
from enslint.rules.ens002_per_slice_forward import PerSliceForward
from enslint.rules.ens003_slice_gradient import SliceGradient

ALL_RULES: tuple[type[Rule], ...] = (LoopHeadStacking, PerSliceForward, SliceGradient)
RULES_BY_CODE: dict[str, type[Rule]] = {rule.code: rule for rule in ALL_RULES}

__all__ = ["ALL_RULES", "RULES_BY_CODE", "Finding", "Rule", "Settings"]
