"""Wrap the lines a fix wrote to the project's line length, the way ruff and black do.

A rewrite is written as one line per statement; in a project whose formatter keeps lines
to 88 or 100 columns, a 150-column line is a style error the user would have to fix by
hand, and their formatter's next run would reformat what enslint wrote. So each written
line that is too long is split as those formatters split it:

- at the last bracket pair (`head(` / body / `)tail`), unless the head would still be
  too long, when an earlier pair is taken (as long as what follows it fits);
- a body that still does not fit goes one element per line at its commas, with a trailing
  comma (or before `for`/`if` in a comprehension, the ternary's `if`/`else`, `and`/`or`,
  binary `+`/`-`), and each piece is split again in the same way;
- a too-long `from x import a, b` gets parentheses and one name per line; a too-long
  comment line is wrapped at its spaces.

Only whole logical lines on one physical line are touched: nothing inside a string,
nothing the fix left spanning several lines. Lines that cannot be split stay as they are.
"""

from __future__ import annotations

import io
import re
import textwrap
import token
import tokenize
from bisect import bisect_right
from dataclasses import dataclass

from enslint.source import LINE_END

_OPEN, _CLOSE = "([{", ")]}"
_DIRECTIVE = re.compile(r"#\s*(noqa\b|type:|pragma\b|pylint:|mypy:|pyright:|fmt:|isort:)", re.IGNORECASE)
_KEYWORDS_BEFORE_PAREN = {"if", "elif", "while", "return", "yield", "in", "not", "and", "or", "is", "else", "assert"}
_PSEUDO_CLOSER = {"lambda": ":", "for": "in"}
_FROM_IMPORT = re.compile(r"^from\s+\S+\s+import\s+(?!\()")


@dataclass
class _Token:
    kind: int
    text: str
    start: int  # column in the line
    end: int
    depth: int  # the bracket depth it sits at (an opener: outside; a closer: outside)


class _Line:
    """One logical line's tokens: brackets matched, lambdas' and comprehensions'
    `for ... in` counted as brackets so that their commas are not split at."""

    def __init__(self, code: str, tokens: list[_Token], comment: str, black: bool = False) -> None:
        self.code, self.tokens, self.comment = code, tokens, comment
        self.black = black  # black's way where it and ruff's formatter differ
        self.match: dict[int, int] = {}
        stack: list[int] = []
        for index, tok in enumerate(tokens):
            if tok.kind == token.OP and tok.text in _OPEN:
                stack.append(index)
            elif tok.kind == token.OP and tok.text in _CLOSE and stack:
                self.match[stack.pop()] = index

    def text(self, i: int, j: int) -> str:
        return self.code[self.tokens[i].start : self.tokens[j - 1].end] if i < j else ""


def _tokens(code: str) -> tuple[list[_Token], str] | None:
    """The tokens of one line of code and its trailing comment; None when it is not one
    complete logical line (unbalanced brackets, a continuation, a string that goes on)."""
    found: list[_Token] = []
    comment = ""
    depth = 0
    # "lambda" and "for" open a pseudo-bracket that their ":" / "in" (at the same
    # bracket depth) closes: (keyword, the depth it opened at).
    pseudo: list[tuple[str, int]] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code + "\n").readline):
            if tok.type in (token.NEWLINE, token.NL, token.ENDMARKER, token.INDENT, token.DEDENT):
                continue
            if tok.start[0] != 1 or tok.end[0] != 1:
                return None
            if tok.type == token.COMMENT:
                comment = tok.string
                continue
            text = tok.string
            if tok.type == token.OP and text in _CLOSE:
                depth -= 1
                if depth < 0:
                    return None
            if pseudo and text == _PSEUDO_CLOSER[pseudo[-1][0]] and depth - 1 == pseudo[-1][1]:
                pseudo.pop()
                depth -= 1
            found.append(_Token(tok.type, text, tok.start[1], tok.end[1], depth))
            if tok.type == token.OP and text in _OPEN:
                depth += 1
            elif tok.type == token.NAME and text in ("lambda", "for"):
                pseudo.append((text, depth))
                depth += 1
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return None
    if depth != 0 or pseudo:
        return None
    return found, comment


def wrap_line(line: str, width: int, black: bool = False) -> list[str]:
    """`line` (no line ending) as the lines ruff's formatter (`black`: black) would split
    it into; `[line]` when it fits or cannot be split."""
    leading = line[: len(line) - len(line.lstrip(" \t\f"))]
    if "\f" in leading:
        # Form feeds before the indentation: Python skips them, so do the width and the
        # lines after the first; the first line keeps them.
        lines = wrap_line(line.replace("\f", "", leading.count("\f")), width, black)
        return ["\f" * leading.count("\f") + lines[0], *lines[1:]]
    if len(line) <= width:
        return [line]
    indent = line[: len(line) - len(line.lstrip(" \t"))]
    code = line[len(indent) :]
    if code.startswith("#"):
        return _wrap_comment(indent, code, width)
    is_import = bool(_FROM_IMPORT.match(code)) and "#" not in code and ";" not in code
    if is_import:
        head, _, names = code.partition(" import ")
        code = f"{head} import ({names.strip()})"
    found = _tokens(code)
    if found is None or not found[0]:
        return [line]
    tokens, comment = found
    code_only = code[: tokens[-1].end]
    parsed = _Line(code_only, tokens, comment, black)
    directive = bool(comment) and bool(_DIRECTIVE.match(comment))
    if not is_import:
        statement = _split_statement(parsed, indent, width, comment, directive)
        if statement is not None:
            return statement
    return _split(parsed, 0, len(tokens), indent, width, comment, is_import, directive)


def _wrap_comment(indent: str, code: str, width: int) -> list[str]:
    body = code.lstrip("#").strip()
    if _DIRECTIVE.match(code) or " " not in body:
        return [indent + code]
    # Not inside brackets or backticks: `(groups, in, heads * out)` stays on one line.
    kept = re.sub(r"\([^()]*\)|`[^`]*`", lambda m: m.group().replace(" ", "\0"), body)
    pieces = textwrap.wrap(kept, width=max(20, width - len(indent) - 2), break_long_words=False, break_on_hyphens=False)
    return [f"{indent}# {piece.replace(chr(0), ' ')}" for piece in pieces] or [indent + code]


def _with_comment(text: str, comment: str) -> str:
    return f"{text}  {comment}" if comment else text


def _split(
    line: _Line, i: int, j: int, indent: str, width: int, comment: str, explode: bool, directive: bool
) -> list[str]:
    """Tokens i..j at `indent`: as they are if they fit, else split at a bracket pair.
    `comment` ends the last line (a tool directive: the first); `explode`: one element
    per line whatever the width (an import)."""
    whole = indent + line.text(i, j)
    if len(_with_comment(whole, comment)) <= width and not explode:
        return [_with_comment(whole, comment)]
    pair = _bracket_to_split(line, i, j, indent, width, omit=not (comment and line.black))
    if pair is None:
        return [_with_comment(whole, comment)]
    opener, closer = pair
    inner = indent + " " * 4
    head_comment, tail_comment = (comment, "") if directive else ("", comment)
    head = _split(line, i, opener + 1, indent, width, head_comment, False, directive)
    body = _body(line, opener, closer, inner, width, explode)
    tail = _split(line, closer, j, indent, width, tail_comment, False, directive)
    return [*head, *body, *tail]


def _bracket_to_split(
    line: _Line, i: int, j: int, indent: str, width: int, omit: bool = True
) -> tuple[int, int] | None:
    """The last bracket pair at the range's own depth with something inside, or (`omit`)
    an earlier one where the head would not fit, while what follows it still fits.
    Black splits a line that ends in a comment at its last pair, and the head again if it
    is still too long; ruff does not."""
    depth = min(t.depth for t in line.tokens[i:j])
    pairs = sorted(
        ((o, c) for o, c in line.match.items() if i <= o and c < j and line.tokens[o].depth == depth and c > o + 1),
        key=lambda pair: pair[1],
        reverse=True,
    )
    if not pairs:
        return None
    if not omit:
        return pairs[0]
    for opener, closer in pairs:
        if len(indent + line.text(closer, j)) > width:
            break  # what would follow the split no longer fits on its line
        if len(indent + line.text(i, opener + 1)) <= width:
            return opener, closer
    return pairs[0]


def _body(line: _Line, opener: int, closer: int, indent: str, width: int, explode: bool) -> list[str]:
    i, j = opener + 1, closer
    depth = line.tokens[opener].depth + 1
    magic = line.tokens[j - 1].text == "," and not _single_element_tuple(line, opener, closer)
    text = indent + line.text(i, j)
    if len(text) <= width and not explode and not magic:
        return [text]
    commas = [k for k in range(i, j) if line.tokens[k].depth == depth and line.tokens[k].text == ","]
    if commas:
        pieces, start = [], i
        for comma in commas:
            pieces.append((start, comma + 1))
            start = comma + 1
        if start < j:
            pieces.append((start, j))
        lines = []
        for number, (a, b) in enumerate(pieces):
            last = number == len(pieces) - 1
            if last and line.tokens[b - 1].text != "," and _may_add_trailing_comma(line, opener):
                lines += _split_element(line, a, b, indent, width, ",")
            else:
                lines += _split_element(line, a, b, indent, width, "")
        return lines
    priority, cut = _delimiters(line, i - 1, j, depth)
    if not cut or (priority == _DOT and len(cut) == 1):
        return _split(line, i, j, indent, width, "", False, False)
    lines, start = [], i
    for at in [*cut, j]:
        lines += _split(line, start, at, indent, width, "", False, False)
        start = at
    return lines


def _split_element(line: _Line, a: int, b: int, indent: str, width: int, suffix: str) -> list[str]:
    """One comma-separated element (its own comma included), split again if too long."""
    lines = _split(line, a, b, indent, max(width - len(suffix), 1), "", False, False)
    lines[-1] += suffix
    return lines


def _single_element_tuple(line: _Line, opener: int, closer: int) -> bool:
    """`(x,)`: the trailing comma makes it a tuple, it is not a request to explode."""
    depth = line.tokens[opener].depth + 1
    commas = [k for k in range(opener + 1, closer) if line.tokens[k].depth == depth and line.tokens[k].text == ","]
    return len(commas) == 1 and line.tokens[opener].text in "(["


def _may_add_trailing_comma(line: _Line, opener: int) -> bool:
    """Not after a lone generator argument, nor where a comma would make a tuple."""
    text = line.tokens[opener].text
    if text in "[{":
        return True
    before = line.tokens[opener - 1] if opener > 0 else None
    is_call = before is not None and (
        (before.kind == token.NAME and before.text not in _KEYWORDS_BEFORE_PAREN)
        or (before.kind == token.OP and before.text in _CLOSE)
    )
    if not is_call:
        return True  # a parenthesised tuple: it already has commas
    closer = line.match[opener]
    depth = line.tokens[opener].depth + 1
    return not any(
        t.text == "for" and t.kind == token.NAME and t.depth == depth for t in line.tokens[opener + 1 : closer]
    )


# Delimiters by priority, as black ranks them (a comma outranks all; a dot that follows a
# call or subscript ranks lowest).
_COMPREHENSION, _TERNARY, _OR, _AND, _COMPARISON, _ARITHMETIC, _TERM, _POWER, _DOT = range(9, 0, -1)
_COMPARISONS = {"==", "!=", "<", ">", "<=", ">=", "in", "not", "is"}


def _delimiters(line: _Line, i: int, j: int, depth: int) -> tuple[int, list[int]]:
    """The highest-priority delimiters of tokens i..j at `depth`: (priority, the token
    indices to break before); (0, []) when there is none."""
    found: dict[int, list[int]] = {}
    fors = [k for k in range(i + 1, j) if line.tokens[k].depth == depth and line.tokens[k].text == "for"]
    for k in range(i + 1, j):
        tok, before = line.tokens[k], line.tokens[k - 1]
        if tok.depth != depth:
            continue
        if tok.kind == token.NAME and before.text in ("not", "is") and tok.text in ("in", "not"):
            continue  # `not in`, `is not`: one operator, broken before its first word
        priority = _delimiter_priority(tok, before, bool(fors) and k > fors[0])
        if priority:
            found.setdefault(priority, []).append(k)
    if not found:
        return 0, []
    best = max(found)
    return best, found[best]


def _delimiter_priority(tok: _Token, before: _Token, past_first_for: bool) -> int:
    """How a break before `tok` ranks as a delimiter (0: it is none), given the token
    `before` it; `past_first_for`: a comprehension's first `for` at this depth precedes it."""
    operand_before = before.kind in (token.NAME, token.NUMBER, token.STRING) or before.text in _CLOSE
    if tok.kind == token.NAME:
        if tok.text == "for" or (tok.text == "if" and past_first_for):
            return _COMPREHENSION  # in a comprehension, `for` opens a pseudo-bracket at this depth
        if tok.text in ("if", "else"):
            return _TERNARY
        if tok.text == "or":
            return _OR
        if tok.text == "and":
            return _AND
        if tok.text in _COMPARISONS and operand_before:
            return _COMPARISON
    elif tok.kind == token.OP and operand_before:
        if tok.text in _COMPARISONS:
            return _COMPARISON
        if tok.text in ("+", "-"):
            return _ARITHMETIC
        if tok.text in ("*", "/", "//", "%", "@"):
            return _TERM
        if tok.text == "**":
            return _POWER
        if tok.text == "." and before.text in _CLOSE:
            return _DOT
    return 0


def _rhs_start(line: _Line) -> int | None:
    """Where the right-hand side of an assignment or a `return` starts: what black wraps
    in optional parentheses."""
    tokens = line.tokens
    if tokens[0].kind == token.NAME and tokens[0].text == "return":
        return 1 if len(tokens) > 1 else None
    assigns = [
        k
        for k, t in enumerate(tokens)
        if t.depth == 0 and t.kind == token.OP and t.text.endswith("=") and t.text not in ("==", "!=", "<=", ">=")
    ]
    return assigns[-1] + 1 if assigns and assigns[-1] + 1 < len(tokens) else None


def _split_statement(line: _Line, indent: str, width: int, comment: str, directive: bool) -> list[str] | None:
    """The right-hand side in parentheses of its own (`x = (` / body / `)`) where black
    puts it so: a chain of two calls or more after a call (`f(x).movedim(0, 1).flatten(1)`),
    two operators or more, or where no split at a bracket gives a head that fits. None:
    split at a bracket as usual."""
    start = _rhs_start(line)
    n = len(line.tokens)
    if start is None or (line.tokens[start].text in _OPEN and line.match.get(start) == n - 1):
        return None
    priority, cuts = _delimiters(line, start - 1, n, 0)
    if priority == _COMPREHENSION:
        return None
    if len(cuts) < 2:
        pair = _bracket_to_split(line, 0, n, indent, width)
        head_fits = pair is not None and pair[0] >= start and len(indent + line.text(0, pair[0] + 1)) <= width
        if head_fits and priority in (0, _DOT):
            return None
        if priority not in (0, _DOT) and line.tokens[-1].text in _CLOSE:
            # One operator, and the line ends in a bracket pair with brackets before it:
            # the formatters split at the brackets.
            last_opener = next(o for o, c in line.match.items() if c == n - 1)
            if head_fits or any(t.text in _OPEN for t in line.tokens[start:last_opener]):
                return None
    inner = indent + " " * 4
    text = inner + line.text(start, n)
    splittable = cuts or any(start <= o for o in line.match)
    if len(text) > width and not splittable:
        return [_with_comment(indent + line.text(0, n), comment)]  # parentheses would not help
    head_comment, tail_comment = (comment, "") if directive else ("", comment)
    head = [_with_comment(f"{indent}{line.text(0, start)} (", head_comment)]
    if len(text) <= width:
        body = [text]
    elif cuts and (priority != _DOT or len(cuts) > 1):
        body, at = [], start
        for cut in [*cuts, n]:
            body += _split(line, at, cut, inner, width, "", False, False)
            at = cut
    else:
        body = _split(line, start, n, inner, width, "", False, False)
    return [*head, *body, _with_comment(f"{indent})", tail_comment)]


def wrap_written(text: str, spans: tuple[tuple[int, int], ...], width: int, black: bool = False) -> str:
    """`text` with each statement that the `spans` (character offsets of what the fixes
    wrote) touch wrapped, where one of its lines is too long. A statement on several
    lines (an expression replaced inside the user's own wrapped call) is joined first and
    wrapped whole, when nothing but its last line holds a comment and no string spans
    lines; it is left as it is unless that makes its longest line shorter."""
    lines = LINE_END.split(text)
    endings = LINE_END.findall(text)
    starts = [0]
    for line, ending in zip(lines, endings, strict=False):  # one line more than endings
        starts.append(starts[-1] + len(line) + len(ending))
    rows: set[int] = set()
    for start, end in spans:
        # An insertion after a statement starts with the line break that ends it: that
        # line is the user's, not written.
        while start < end and text[start] in "\r\n":
            start += 1
        while end > start and text[end - 1] in "\r\n":
            end -= 1
        if start == end:
            continue
        first = bisect_right(starts, start)
        last = bisect_right(starts, max(start, end - 1))
        rows.update(range(first, last + 1))
    if not any(0 < row <= len(lines) and _width(lines[row - 1]) > width for row in rows):
        return text
    statements = _statements(text)
    touched = sorted({statements[row] for row in rows if row in statements}, reverse=True)
    newline = endings[0] if endings else "\n"
    for first, last, joinable in touched:
        longest = max(_width(line) for line in lines[first - 1 : last])
        if longest <= width or (first != last and not joinable):
            continue
        wrapped = wrap_line(_joined(lines[first - 1 : last]), width, black)
        if first == last and len(wrapped) == 1:
            continue
        if first != last and max(_width(line) for line in wrapped) >= longest:
            continue
        lines[first - 1 : last] = [newline.join(wrapped)] + [None] * (last - first)
    out = []
    for index, line in enumerate(lines):
        if line is None:
            continue  # joined into the statement above: its line ending went with it
        out.append(line)
        if index < len(endings):
            out.append(endings[_last_of(lines, index)])
    return "".join(out)


def _width(line: str) -> int:
    return len(line) - line.count("\f")


def _last_of(lines: list, index: int) -> int:
    """The row whose line ending closes the statement starting at `index`."""
    while index + 1 < len(lines) and lines[index + 1] is None:
        index += 1
    return index


def _joined(physical: list[str]) -> str:
    """A statement's lines as one: indentation and line breaks inside brackets dropped."""
    joined = physical[0].rstrip()
    for line in physical[1:]:
        piece = line.strip()
        if not piece:
            continue
        tight = joined.endswith(tuple(_OPEN)) or piece.startswith(tuple(_CLOSE)) or piece.startswith(".")
        joined += piece if tight else " " + piece
    return joined


def _statements(text: str) -> dict[int, tuple[int, int, bool]]:
    """Each row's statement (or comment line): (first row, last row, whether its lines
    may be joined: no comment but on its last line, no string or backslash across
    lines)."""
    found: dict[int, tuple[int, int, bool]] = {}
    first: int | None = None
    joinable = True
    comment_row = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in (token.INDENT, token.DEDENT, token.ENDMARKER):
                continue
            if tok.type == token.NL and first is None:
                continue
            if first is None:
                first, joinable, comment_row = tok.start[0], True, None
            if tok.type == token.COMMENT:
                comment_row = tok.start[0]
            elif tok.type not in (token.NEWLINE, token.NL):
                if comment_row is not None and tok.start[0] > comment_row:
                    joinable = False  # a comment inside the statement
                if tok.start[0] != tok.end[0] or tok.line.rstrip().endswith("\\"):
                    joinable = False
            ends = tok.type == token.NEWLINE or (tok.type == token.NL and tok.line.lstrip().startswith("#"))
            if ends and (tok.type == token.NEWLINE or tok.start[0] == first):
                last = tok.start[0]
                for row in range(first, last + 1):
                    found[row] = (first, last, joinable)
                first = None
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return {}
    return found
