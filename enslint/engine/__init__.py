"""The fix engine: `edits` applies fixes (edits with a safety level) to a text, detecting
overlaps; `transaction` turns that into one atomic, re-parsed write per file."""
