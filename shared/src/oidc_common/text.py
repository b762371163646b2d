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

# A deliberately plain shape, not RFC 5322: a local part of at most 64 characters (RFC 5321
# §4.5.3.1.1), "@", then a domain of at most 255 characters made of two or more non-empty
# dot-separated labels; no whitespace and no second "@" anywhere.
_EMAIL_ADDRESS: Final = re.compile(r"[^\s@]{1,64}@(?=[^\s@]{1,255}\Z)[^\s@.]+(?:\.[^\s@.]+)+")


def is_email_address(value: str) -> bool:
    """Whether `value` has the shape of an email address (see `_EMAIL_ADDRESS`)."""
    return _EMAIL_ADDRESS.fullmatch(value) is not None
