"""The "not blank" rule (audittrail.domain.text) and the OpenAPI patterns generated from it.

The server decides with `is_blank` (schemas and services alike); the document states the rule as
a pattern. These tests hold the two to each other on every single code point, and on the texts
an outside probe sent.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys

import jsonschema_rs
import pytest
from marshmallow import Schema
from marshmallow import ValidationError

from audittrail.domain.text import blank_ranges
from audittrail.domain.text import code_point_ranges
from audittrail.domain.text import is_blank
from audittrail.schemas.custom_fields import NO_NUL_PATTERN
from audittrail.schemas.custom_fields import Text
from audittrail.schemas.custom_fields import not_blank_pattern
from audittrail.schemas.custom_fields import printable
from audittrail.schemas.custom_fields import printable_pattern

# What the probe approved a tier 3 action with, and the fillers the issue names.
INVISIBLE = ["\u200b", "\ufeff", "\u200d", "\u2060", "\u200f", "\u00ad", "\u2800", "\u3164", "\u115f", "\u1160",
             "\uffa0", "\U000e0001", "\U000e0020"]  # fmt: skip
WHITE_SPACE = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\u0085", "\u00a0", "\u1680", "\u2028", "\u3000"]
READABLE = ["a", "\u200ba", "a\u200b", " \u00a0 ok \u3000", "\u00e9", "\U0001f600", "\u0600\u0661", "\u2801", "0"]
TRICKY = INVISIBLE + WHITE_SPACE + READABLE + ["", "\u200b\u200c\u200d", "\u3164\u3164", "a\x00", "\x00", "\x00a"]


class _TextSchema(Schema):
    text = Text()


def _server_accepts(text: str) -> bool:
    """What the API does with a "not blank" field: NUL refused (json_body), then the Text field."""
    if "\x00" in text:
        return False
    try:
        _TextSchema().load({"text": text})
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("text", INVISIBLE + WHITE_SPACE + ["", "\u200b \u2060\ufeff"], ids=ascii)
def test_white_space_format_characters_and_fillers_are_blank(text):
    assert is_blank(text)


@pytest.mark.parametrize("text", READABLE, ids=ascii)
def test_text_with_one_visible_character_is_not_blank(text):
    assert not is_blank(text)


def test_a_missing_text_is_blank():
    assert is_blank(None)


@pytest.mark.parametrize("text", TRICKY, ids=ascii)
def test_the_not_blank_pattern_agrees_with_the_server(text):
    pattern = not_blank_pattern()
    validator = jsonschema_rs.validator_for({"type": "string", "pattern": pattern})

    assert _ecma_search(pattern, text) is _server_accepts(text)
    assert validator.is_valid(text) is _server_accepts(text)


def _ecma_search(pattern: str, text: str) -> bool:
    """`pattern` as ECMA-262 reads it: Python's closing `$` would also match before a final newline."""
    assert pattern.endswith("$")
    return re.search(pattern[:-1] + r"\Z", text) is not None


def _edges_and_sample(ranges) -> list[str]:
    """Each range's first and last code point and their neighbours, and a fixed sample of the rest."""
    code_points = {edge for low, high in ranges for edge in (low - 1, low, high, high + 1)}
    code_points |= set(range(0, 0x3400)) | set(random.Random(15).sample(range(sys.maxunicode + 1), 20_000))
    # Surrogates have no UTF-8 form: a request holding one is malformed_json before any schema.
    return [chr(cp) for cp in sorted(code_points) if 0 <= cp <= sys.maxunicode and not 0xD800 <= cp <= 0xDFFF]


def test_the_not_blank_pattern_agrees_with_the_server_character_by_character():
    pattern = not_blank_pattern()

    disagreeing = [
        f"U+{ord(character):04X}"
        for character in _edges_and_sample(blank_ranges())
        if _ecma_search(pattern, character) is not _server_accepts(character)
    ]

    assert disagreeing == []


def test_the_printable_pattern_agrees_with_the_printable_rule_character_by_character():
    pattern = printable_pattern()

    def accepted(text):
        try:
            printable(text)
        except ValidationError:
            return False
        return True

    disagreeing = [
        f"U+{ord(character):04X}"
        for character in _edges_and_sample(code_point_ranges(lambda character: not character.isprintable()))
        if _ecma_search(pattern, character) is not accepted(character)
    ]

    assert disagreeing == []


@pytest.mark.parametrize(("text", "valid"), [("", True), ("a", True), ("a\x00", False), ("\x00", False)], ids=ascii)
def test_the_no_nul_pattern_refuses_nul_only(text, valid):
    assert _ecma_search(NO_NUL_PATTERN, text) is valid


def test_the_patterns_are_ecma_262_with_explicit_bmp_escapes():
    """\\uXXXX in the BMP; astral code points as characters (what the `u` flag reads as one)."""
    pattern = not_blank_pattern()

    assert pattern.startswith("^[") and pattern.endswith("$")
    assert "\\s" not in pattern and "\\S" not in pattern
    assert all(ord(character) > 0xFFFF for character in pattern if not character.isascii())
    assert "\\u2000-\\u200f" in pattern and "\\ufeff" in pattern and "\\u0000" in pattern


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run an ECMA-262 engine")
def test_an_ecma_262_engine_with_the_u_flag_reads_the_patterns_as_the_server_does():
    script = (
        "const [patterns, texts] = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "console.log(JSON.stringify(patterns.map(p => texts.map(t => new RegExp(p, 'u').test(t)))));"
    )
    patterns = [not_blank_pattern(), printable_pattern(), NO_NUL_PATTERN]
    texts = [text for text in TRICKY if text]

    result = subprocess.run(
        ["node", "-e", script], input=json.dumps([patterns, texts]), capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    not_blank, printable_, no_nul = json.loads(result.stdout)
    assert not_blank == [_server_accepts(text) for text in texts]
    assert printable_ == [text.isprintable() for text in texts]
    assert no_nul == ["\x00" not in text for text in texts]
