"""What counts as text a person can read: the "not blank" rule of reasons, notes and names (stdlib only).

A text is blank when every character of it is blank, and a character is blank when it shows
nothing: white space (`str.isspace()`), a format character (Unicode category Cf: zero-width
spaces and joiners, the BOM, bidirectional marks, the soft hyphen…) or one of the fillers that
fonts draw empty although Unicode calls them letters or symbols. This is the one definition:
the services and the schemas call `is_blank`, and the OpenAPI pattern is generated from
`blank_ranges()`, so the server and its document cannot disagree.
"""

from __future__ import annotations

import sys
import unicodedata
from functools import lru_cache

# Braille pattern blank, Hangul filler, Hangul choseong filler, Hangul jungseong filler, halfwidth Hangul filler.
BLANK_FILLERS = frozenset("\u2800\u3164\u115f\u1160\uffa0")


def is_blank_character(character: str) -> bool:
    """Whether this one character shows nothing (white space, a format character or a filler)."""
    return character.isspace() or unicodedata.category(character) == "Cf" or character in BLANK_FILLERS


def is_blank(text: str | None) -> bool:
    """Whether `text` is missing or holds nothing a person could read."""
    return text is None or all(is_blank_character(character) for character in text)


@lru_cache(maxsize=1)
def blank_ranges() -> tuple[tuple[int, int], ...]:
    """Every blank character as inclusive code point ranges, in order (for the OpenAPI pattern)."""
    return code_point_ranges(is_blank_character)


def code_point_ranges(predicate) -> tuple[tuple[int, int], ...]:
    """The code points whose character satisfies `predicate`, as inclusive ranges in order."""
    ranges: list[tuple[int, int]] = []
    start = None
    for code_point in range(sys.maxunicode + 1):
        if predicate(chr(code_point)):
            if start is None:
                start = code_point
        elif start is not None:
            ranges.append((start, code_point - 1))
            start = None
    if start is not None:
        ranges.append((start, sys.maxunicode))
    return tuple(ranges)
