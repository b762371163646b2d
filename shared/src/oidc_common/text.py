"""Text a person will read: which characters are unsafe to show, what an email address is.

Client metadata (`client_name`, `contacts`, ...) and tenant settings (`support_email`) follow
these rules, so a value means the same on every screen that shows it.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["UNSAFE_TEXT", "is_email_address"]

# C0/C1 controls, line/paragraph separators, bidi embeddings/overrides/isolates (text spoofing
# on a consent screen) and lone surrogates (not encodable as UTF-8).
UNSAFE_TEXT: Final = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)

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
