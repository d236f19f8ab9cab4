"""Text a person typed: one rule for every free-text field of a command.

Names, reasons, proof and references are stored for good and shown again:
in read models (PostgreSQL ``text`` refuses NUL, so one NUL would break every
cross-wallet read from then on), on an auditor's terminal (an escape sequence
recolours or rewrites it) and in documents where a bidirectional override
shows ``Peeters`` for what is stored as ``sreteeP``. So, when a command is
decided, a text field refuses:

- control characters: NUL and the rest of C0 (U+0000..U+001F), DEL (U+007F)
  and C1 (U+0080..U+009F). A multi-line text (a reason) keeps the two layout
  characters every system reads alike, line feed and tab; carriage return is
  refused there too, since a bare one moves the cursor back over what a
  terminal or log line already showed;
- line and paragraph separators (U+2028, U+2029): line breaks nobody sees as
  such;
- bidirectional formatting: embeddings and overrides (U+202A..U+202E),
  isolates (U+2066..U+2069) and the invisible marks (U+200E, U+200F, U+061C).
  Right-to-left letters order themselves; these only reorder what is shown
  against what is stored;
- unpaired surrogates (U+D800..U+DFFF): a JSON escape can carry one, but no
  UTF-8 database or file can store it;
- blank text where something must be said (names, reasons, proof): only
  whitespace or invisible format characters.

Stored events are never checked again: a replay applies whatever was recorded,
and the command line escapes what it cannot print (``scripts.common``).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

LAYOUT = frozenset("\n\t")
"""What a multi-line text may hold besides printable characters: line feed and tab."""
BIDI_CONTROLS = frozenset(
    [chr(code) for code in range(0x202A, 0x202F)] + [chr(code) for code in range(0x2066, 0x206A)]
) | {"\u200e", "\u200f", "\u061c"}
"""Embeddings, overrides, isolates and the left-to-right, right-to-left and Arabic letter marks."""
SEPARATORS = frozenset("\u2028\u2029")

REFUSED_PATTERN = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff"
"""The refused characters (tab and line feed aside) as a regular-expression class, for the API's schema."""


def is_control(char: str) -> bool:
    """C0 (NUL included), DEL and C1 control characters."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def refused_character(char: str, multiline: bool = False) -> str | None:
    """Why ``char`` may not appear in a text field, or None when it may."""
    if is_control(char):
        if multiline and char in LAYOUT:
            return None
        if char in "\n\r\t":
            return "line breaks and tabs are not allowed" if not multiline else "carriage returns are not allowed"
        return "control characters are not allowed"
    if char in BIDI_CONTROLS:
        return "bidirectional formatting characters are not allowed"
    if char in SEPARATORS:
        return "line and paragraph separators are not allowed"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return "unpaired surrogates are not allowed"
    return None


def is_blank(text: str) -> bool:
    """Nothing to read: empty, or only whitespace and invisible format characters."""
    return all(char.isspace() or unicodedata.category(char) == "Cf" for char in text)


def text_problem(text: str, multiline: bool = False, required: bool = False) -> str | None:
    """What is wrong with ``text`` under the rule above, in plain English, or None.

    ``multiline`` allows line feed and tab; ``required`` refuses blank text.
    The first refused character is named by its code point (``U+001B``),
    never shown itself.
    """
    for char in text:
        reason = refused_character(char, multiline)
        if reason:
            return f"{reason} (U+{ord(char):04X})"
    if required and is_blank(text):
        return "must not be blank"
    return None


def _checker(multiline: bool, required: bool) -> AfterValidator:
    def check(text: str) -> str:
        problem = text_problem(text, multiline=multiline, required=required)
        if problem:
            raise PydanticCustomError("text_not_allowed", problem)
        return text

    return AfterValidator(check)


_ONE_LINE_SCHEMA = {"pattern": f"^[^{REFUSED_PATTERN}\\t\\n]*$"}
_MULTI_LINE_SCHEMA = {"pattern": f"^[^{REFUSED_PATTERN}]*$"}

Identifier = Annotated[
    str,
    _checker(multiline=False, required=False),
    Field(json_schema_extra=_ONE_LINE_SCHEMA),
]
"""One line that its own rule then reads (an enterprise or provider number, a
payment reference, an order id): the text rule, blank left to that rule."""

Line = Annotated[
    str,
    _checker(multiline=False, required=True),
    Field(json_schema_extra=_ONE_LINE_SCHEMA),
]
"""One line that must say something: a name, a proof document's reference."""

Prose = Annotated[
    str,
    _checker(multiline=True, required=True),
    Field(json_schema_extra=_MULTI_LINE_SCHEMA),
]
"""Free text that may span lines (line feed, tab) and must say something: a reason."""


def printable(value: Any) -> str:
    """``value`` as text safe to show on a terminal: every character that is not
    printable (control characters, escape sequences, bidirectional overrides,
    line separators, invisible format characters) is written as its escape,
    ``\\x1b``, ``\\u202e``, the way Python writes it. Stored names and reasons
    older than the text rule may hold any of these."""
    text = "" if value is None else str(value)
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
