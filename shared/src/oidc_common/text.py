"""Text a person will read: which characters are unsafe to show, which names look alike,
what an email address is.

Client metadata (`client_name`, `contacts`, ...) and tenant settings (`support_email`) follow
these rules, so a value means the same on every screen that shows it.

The text rule (`UNSAFE_TEXT`) refuses what a reader cannot see or that changes how the rest
reads: controls (Cc), line and paragraph separators (Zl, Zp), every format character (Cf:
bidi controls, U+200B zero-width space, U+2060 word joiner, U+FEFF, U+061C, U+00AD soft
hyphen, U+180E), every default-ignorable code point (Unicode's
Default_Ignorable_Code_Point: variation selectors, Hangul fillers, tag characters) and lone
surrogates. The sets come from ICU's Unicode data, not a list kept here.

Names that look alike (`looks_like`) are compared by their UTS #39 skeletons (ICU's spoof
checker), after NFKC, case folding and dropping spaces and punctuation: `\u0410cme` (a Cyrillic
A), `ACME`, `Ac-me`, `Acrne` and `Acm3` are not it, but `\u0410cme`, `ACME`, `A c m e` and
`Acrne` all look like `Acme`.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

import icu

__all__ = ["UNSAFE_TEXT", "is_email_address", "looks_like"]

# U+2800 (BRAILLE PATTERN BLANK) is a symbol that draws nothing: a name can end in it unseen.
_UNSAFE_PROPERTIES: Final = "[[:Cc:][:Zl:][:Zp:][:Cf:][:Default_Ignorable_Code_Point:][\\u2800]]"


def _character_class(pattern: str) -> str:
    """The members of an ICU UnicodeSet `pattern` as the body of a regex character class."""
    ranges = []
    for start, end in icu.UnicodeSet(pattern).ranges():  # (first, last) characters
        first, last = re.escape(start), re.escape(end)
        ranges.append(first if first == last else f"{first}-{last}")
    return "".join(ranges)


# The text rule (module docstring); lone surrogates too, which are not encodable as UTF-8.
UNSAFE_TEXT: Final = re.compile(f"[{_character_class(_UNSAFE_PROPERTIES)}\ud800-\udfff]")

_SPOOF_CHECKER: Final = icu.SpoofChecker()


def _skeleton(name: str) -> str:
    """The name as a reader sees it: NFKC, without spaces and punctuation (`Demo-tenant`,
    `DemoTenant` and `Demo tenant.` read as `Demo tenant`), case folded before and after the
    UTS #39 skeleton (which maps some characters to capitals: `0` to `O`)."""
    kept = "".join(
        char
        for char in unicodedata.normalize("NFKC", name)
        if unicodedata.category(char)[0] not in "ZP" and not UNSAFE_TEXT.match(char)
    )
    return str(_SPOOF_CHECKER.getSkeleton(0, kept.casefold())).casefold()


def looks_like(name: str, other: str) -> bool:
    """Whether `name` is `other` or confusable with it for a reader (UTS #39 §4 skeletons,
    case and white space ignored)."""
    return _skeleton(name) == _skeleton(other)


MAX_EMAIL_LENGTH: Final = 254  # RFC 5321 §4.5.3.1.3: a forward-path of 256 octets, less "<>"
MAX_LOCAL_PART_LENGTH: Final = 64  # RFC 5321 §4.5.3.1.1

# RFC 5322 dot-atom on both sides, widened to non-ASCII letters as RFC 6531 allows; the domain
# needs at least two labels (no "user@localhost"), each at most 63 characters. No quoted local
# parts, comments or whitespace: an address a person reads must be the one mail goes to.
_NON_ASCII = "\u00a1-\ud7ff\ue000-\U0010ffff"
_ATEXT = rf"[A-Za-z0-9!#$%&'*+/=?^_`{{|}}~\-{_NON_ASCII}]"
_LABEL_CHAR = rf"[A-Za-z0-9{_NON_ASCII}]"
_LABEL = rf"{_LABEL_CHAR}(?:[A-Za-z0-9\-{_NON_ASCII}]{{0,61}}{_LABEL_CHAR})?"
_EMAIL_ADDRESS: Final = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+")


def is_email_address(value: str) -> bool:
    """Whether `value` is an email address in dot-atom form (`_EMAIL_ADDRESS`) within RFC 5321's
    lengths; used for user accounts, client `contacts` and a tenant's `support_email` alike."""
    return (
        3 <= len(value) <= MAX_EMAIL_LENGTH
        and value.isprintable()  # also refuses lone surrogates and Unicode line breaks
        and _EMAIL_ADDRESS.fullmatch(value) is not None
        and len(value.rpartition("@")[0]) <= MAX_LOCAL_PART_LENGTH
    )
