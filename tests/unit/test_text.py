"""The one rule for text a person typed (ledger.domain.text), as rows: which
characters each kind of field refuses, and why, in plain English."""

from __future__ import annotations

import re

import pytest
from pydantic import TypeAdapter, ValidationError

from ledger.domain import commands as c
from ledger.domain.text import Identifier, Line, Prose, refused_character, text_problem
from tests.conftest import ENTERPRISE, sme

ONE_LINE, MULTI_LINE = False, True


@pytest.mark.parametrize(
    ("text", "multiline", "problem"),
    [
        # printable text of any script is fine
        ("Bakkerij Peeters", ONE_LINE, None),
        ("Brasserie Ç'est-à-dire & Zoon (2e) — “quoted”", ONE_LINE, None),
        ("مخبز السلام", ONE_LINE, None),  # right-to-left letters order themselves
        ("שלום", ONE_LINE, None),
        ("Café 🍰 Ōsaka 東京", ONE_LINE, None),
        ("Bakkerij\u00a0Peeters", ONE_LINE, None),  # no-break space is a space
        # C0 controls, NUL first among them
        ("\u0000", ONE_LINE, "control characters are not allowed (U+0000)"),
        ("Bakkerij\u0000", MULTI_LINE, "control characters are not allowed (U+0000)"),
        ("\u001b[31mred", ONE_LINE, "control characters are not allowed (U+001B)"),
        ("\u001b[31mred", MULTI_LINE, "control characters are not allowed (U+001B)"),
        ("bell\u0007", MULTI_LINE, "control characters are not allowed (U+0007)"),
        ("back\u0008space", ONE_LINE, "control characters are not allowed (U+0008)"),
        # DEL and C1
        ("del\u007f", ONE_LINE, "control characters are not allowed (U+007F)"),
        ("next line\u0085", MULTI_LINE, "control characters are not allowed (U+0085)"),
        ("csi\u009b31m", ONE_LINE, "control characters are not allowed (U+009B)"),
        # layout: one line refuses tab and line breaks; multi-line keeps line feed and tab
        ("two\nlines", ONE_LINE, "line breaks and tabs are not allowed (U+000A)"),
        ("a\ttab", ONE_LINE, "line breaks and tabs are not allowed (U+0009)"),
        ("carriage\rreturn", ONE_LINE, "line breaks and tabs are not allowed (U+000D)"),
        ("two\nlines\tand a tab", MULTI_LINE, None),
        ("windows\r\nline", MULTI_LINE, "carriage returns are not allowed (U+000D)"),
        ("line\u2028separator", MULTI_LINE, "line and paragraph separators are not allowed (U+2028)"),
        ("paragraph\u2029separator", ONE_LINE, "line and paragraph separators are not allowed (U+2029)"),
        # bidirectional overrides, embeddings, isolates and marks
        ("Peeters\u202etxt.exe", ONE_LINE, "bidirectional formatting characters are not allowed (U+202E)"),
        ("\u202aembedded", MULTI_LINE, "bidirectional formatting characters are not allowed (U+202A)"),
        ("\u202doverride", ONE_LINE, "bidirectional formatting characters are not allowed (U+202D)"),
        ("iso\u2066late\u2069", MULTI_LINE, "bidirectional formatting characters are not allowed (U+2066)"),
        ("iso\u2069", ONE_LINE, "bidirectional formatting characters are not allowed (U+2069)"),
        ("mark\u200e", ONE_LINE, "bidirectional formatting characters are not allowed (U+200E)"),
        ("mark\u200f", MULTI_LINE, "bidirectional formatting characters are not allowed (U+200F)"),
        ("arabic mark\u061c", ONE_LINE, "bidirectional formatting characters are not allowed (U+061C)"),
        # a JSON escape can carry half a surrogate pair; nothing can store it
        ("half \ud800", ONE_LINE, "unpaired surrogates are not allowed (U+D800)"),
        ("half \udfff", MULTI_LINE, "unpaired surrogates are not allowed (U+DFFF)"),
        # the first refused character is the one named
        ("\u202e\u0000", ONE_LINE, "bidirectional formatting characters are not allowed (U+202E)"),
    ],
)
def test_a_text_refuses_controls_separators_bidi_formatting_and_lone_surrogates(text, multiline, problem):
    assert text_problem(text, multiline=multiline) == problem


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        (" ", True),
        ("   \u00a0\u3000", True),  # no-break and ideographic spaces
        ("\u200b\u2060", True),  # zero-width space and word joiner: invisible
        (" x ", False),
        ("0", False),
        ("-", False),
    ],
)
def test_a_name_reason_or_proof_that_shows_nothing_is_blank(text, blank):
    assert (text_problem(text, required=True) == "must not be blank") is blank
    assert text_problem(text, required=False) is None


def test_every_refused_character_is_named_by_its_code_point_and_never_shown():
    for text in ("\u0000", "\u001b", "\u202e", "\ud800"):
        problem = text_problem(text)
        assert problem is not None and text not in problem and f"U+{ord(text):04X}" in problem


@pytest.mark.parametrize(("kind", "multiline"), [(Identifier, False), (Line, False), (Prose, True)])
def test_the_pattern_in_the_api_schema_refuses_exactly_what_the_rule_refuses(kind, multiline):
    pattern = re.compile(TypeAdapter(kind).json_schema()["pattern"])
    for code in [*range(0, 0x3000), *range(0xD7F0, 0xE010), 0xFEFF, 0xFFFD, 0x1F370]:
        char = chr(code)
        assert (pattern.fullmatch(char) is None) is (refused_character(char, multiline) is not None), hex(code)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (Line, "\u0000", "control characters are not allowed (U+0000)"),
        (Line, " \t", "line breaks and tabs are not allowed (U+0009)"),
        (Line, "  ", "must not be blank"),
        (Prose, "first\nsecond", None),
        (Prose, "\n\t", "must not be blank"),
        (Identifier, "", None),  # an identifier's own rule judges an empty one
        (Identifier, "DV.O207084\u0000", "control characters are not allowed (U+0000)"),
    ],
)
def test_the_checked_types_carry_the_rule_into_pydantic_models(kind, text, message):
    adapter = TypeAdapter(kind)
    if message is None:
        assert adapter.validate_python(text) == text
        return
    with pytest.raises(ValidationError) as raised:
        adapter.validate_python(text)
    assert [error["msg"] for error in raised.value.errors()] == [message]


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda text: c.OpenWallet(enterprise_number=ENTERPRISE, name=text, sme=sme()), "name"),
        (lambda text: c.OpenWallet(enterprise_number=text, name="Bakkerij Peeters", sme=sme()), "enterprise_number"),
        (lambda text: c.RefuseApplication(reason=text), "reason"),
        (lambda text: c.ReverseEvent(sequence=4, reason=text), "reason"),
        (lambda text: c.StopProject(reason="other", proof=text), "proof"),
        (lambda text: c.ExecutePayout(order_id=text, value_date="2026-04-01"), "order_id"),
        (
            lambda text: c.DepositOwnShare(amount="1.00", payment_reference=text, value_date="2026-04-01"),
            "payment_reference",
        ),
    ],
)
def test_every_free_text_field_of_a_command_follows_the_rule(make, field):
    with pytest.raises(ValidationError) as raised:
        make("x\u0000")
    (error,) = raised.value.errors()
    assert error["loc"] == (field,) and error["msg"] == "control characters are not allowed (U+0000)"
