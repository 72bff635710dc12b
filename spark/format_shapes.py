"""The text shape a Spark datetime pattern can parse, as a regular expression: a cheap test that
rules a value out before `try_to_timestamp` tries the pattern.

Why: a failed `try_to_timestamp` costs a thrown and caught parse exception inside Spark, and every
value that is not in the first format fails several formats (ten with two configured ones). A regular
expression match on a short string is several times cheaper than that exception.

Guarantee: the expression is a necessary condition. Every text the pattern parses matches it (it
may also match texts the pattern rejects; `try_to_timestamp` then decides). Each numeric field
becomes "digits, optionally signed", every text field (month names, zones, eras, AM/PM) "anything",
literals match case-insensitively (Spark parses case-insensitively), optional sections become
optional groups. A pattern with a letter or a character this module does not know gets no shape
(`None`): it is then always tried.
"""

from __future__ import annotations

# Spark pattern letters whose field is digits (any count): year, day, day of year, hour forms,
# minute, second, fraction, aligned day of week in month.
_NUMERIC = frozenset("ydDhHkKmsSF")
# Digits at counts 1-2, text at 3 or more: month, stand-alone month, quarter, day of week (local).
_NUMERIC_UP_TO_TWO = frozenset("MLQqec")
# Text fields: era, day-of-week name, AM/PM, zone id, zone name, localized offset, offsets.
_TEXT = frozenset("GEaVzOXxZ")
# A numeric field may start with a sign (Java accepts one before a negative or an over-wide value);
# a run of adjacent numeric fields may have one before each field.
_DIGITS, _DIGIT_RUN, _ANYTHING = "[+-]?[0-9]+", "[+-]?[0-9][0-9+-]*", ".*"


def _literal(char: str) -> str:
    # \x{...} is a literal in Java's regex syntax for every character, special or not.
    return f"\\x{{{ord(char):x}}}"


def _tokens(pattern: str) -> list[str] | None:
    """Regex pieces, fields as the markers "D" (digits) and "T" (text); None for an unknown letter,
    an unbalanced bracket or quote."""
    out: list[str] = []
    i, depth, n = 0, 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "'":
            end = i + 1
            text = []
            while True:
                if end >= n:
                    return None  # an unclosed quote: Spark rejects the pattern anyway
                if pattern[end] == "'":
                    if end + 1 < n and pattern[end + 1] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(pattern[end])
                end += 1
            if any(c.isdigit() for c in text):
                return None  # see the digit literal below
            out.append("".join(_literal(c) for c in text) if text else _literal("'"))
            i = end + 1
            continue
        if char == "[":
            depth += 1
            out.append("(?:")
        elif char == "]":
            if depth == 0:
                return None
            depth -= 1
            out.append(")?")
        elif char.isalpha():
            run = i
            while run < n and pattern[run] == char:
                run += 1
            count = run - i
            if char in _NUMERIC or (char in _NUMERIC_UP_TO_TWO and count <= 2):
                out.append("D")
            elif char in _TEXT or char in _NUMERIC_UP_TO_TWO:
                out.append("T")
            else:
                return None  # a letter not known here (or padding 'p'): no shape, always tried
            i = run
            continue
        elif char in "#{}":
            return None  # reserved by Java's pattern syntax
        elif char.isdigit():
            return None  # a digit literal could be read as part of a neighbouring numeric field
        else:
            out.append(_literal(char))
        i += 1
    return out if depth == 0 else None


def format_shape(pattern: str) -> str | None:
    """A Java regular expression every text `pattern` parses matches, anchored; None when unknown.

    Adjacent fields merge into one piece (`yyyyMMdd` is one run of digits), which keeps the
    expression free of nested repetition and its matching linear in practice."""
    tokens = _tokens(pattern)
    if tokens is None:
        return None
    pieces: list[str] = []
    previous_field = ""
    for token in tokens:
        if token in ("D", "T"):
            if previous_field:
                merged = "D" if previous_field == token == "D" else "T"
                pieces[-1] = _DIGIT_RUN if merged == "D" else _ANYTHING
                previous_field = merged
                continue
            pieces.append(_DIGITS if token == "D" else _ANYTHING)
            previous_field = token
            continue
        pieces.append(token)
        previous_field = ""
    # i and u: literals compare case-insensitively, like Spark's parser; s: "anything" spans any character.
    return "(?ius)^" + "".join(pieces) + "$"
