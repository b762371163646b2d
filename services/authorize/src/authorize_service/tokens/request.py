"""The parameters of a token request, read from its body.

RFC 6749 §4.1.3 / §4.4.2: `application/x-www-form-urlencoded` in UTF-8 (Appendix B);
`application/json` is accepted too, as Auth0 does. Anything that cannot be read as one flat
set of string parameters is an `invalid_request`, never a server error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl

from aiohttp import web

from oidc_common.errors import OAuthError
from oidc_common.resource_indicators import single_resource

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
# Far more than any token request has; bounds the work spent on a hostile body.
MAX_PARAMETERS = 64
# RFC 6749 §5.2 limits error_description to printable ASCII without `"` and `\`; a name
# the client sent is echoed only when it is plainly a parameter name.
_ECHOABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def _name(name: str) -> str:
    return name if _ECHOABLE_NAME.match(name) else "(unprintable name)"


class TokenRequest:
    """One value per parameter. RFC 6749 §3.1: a parameter sent without a value is treated
    as if it were omitted; unrecognised parameters are ignored (§3.2)."""

    def __init__(self, params: dict[str, str]) -> None:
        self._params = {name: value for name, value in params.items() if value != ""}

    def get(self, name: str) -> str | None:
        return self._params.get(name)

    def require(self, name: str) -> str:
        value = self._params.get(name)
        if value is None:
            raise OAuthError("invalid_request", f"Missing required parameter: {name}")
        return value


def _single_valued(pairs: Iterable[tuple[str, object]]) -> dict[str, object]:
    # RFC 6749 §3.1 / §3.2: request parameters MUST NOT be included more than once.
    params: dict[str, object] = {}
    for name, value in pairs:
        if name == "resource" and name in params:
            # RFC 8707 §2 lets `resource` repeat; this server serves one audience per token.
            single_resource([str(params[name]), str(value)])
            continue
        if name in params:
            raise OAuthError(
                "invalid_request", f"Parameter {_name(name)} is included more than once"
            )
        params[name] = value
    return params


def parse_form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            errors="strict",
            max_num_fields=MAX_PARAMETERS,
        )
    except ValueError as exc:  # UnicodeDecodeError included; too many fields
        raise OAuthError("invalid_request", "The request body is not valid form data") from exc
    return {name: str(value) for name, value in _single_valued(pairs).items()}


def parse_json(body: bytes) -> dict[str, str]:
    try:
        document = json.loads(body, object_pairs_hook=_single_valued)
    except OAuthError:
        raise
    except (ValueError, RecursionError) as exc:
        raise OAuthError("invalid_request", "The request body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise OAuthError("invalid_request", "The request body must be a JSON object")
    params: dict[str, str] = {}
    for name, value in document.items():
        if not isinstance(value, str):
            raise OAuthError("invalid_request", f"Parameter {_name(name)} must be a string")
        try:
            # JSON escapes can spell lone surrogates, which are not text (RFC 8259 §8.2).
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise OAuthError("invalid_request", "The request body is not valid UTF-8") from exc
        params[name] = value
    if len(params) > MAX_PARAMETERS:
        raise OAuthError("invalid_request", "Too many parameters")
    return params


async def read_token_request(request: web.Request) -> TokenRequest:
    content_type = request.content_type
    if content_type not in (FORM, JSON):
        raise OAuthError("invalid_request", f"The request body must be {FORM} (or {JSON})")
    try:
        body = await request.read()
    except web.RequestPayloadError as exc:  # e.g. a Content-Encoding that does not decode
        raise OAuthError("invalid_request", "The request body cannot be read") from exc
    return TokenRequest(parse_form(body) if content_type == FORM else parse_json(body))
