"""Signing out: RP-initiated logout (`endpoint`: `/oidc/logout`, Auth0's `/v2/logout`), the
`id_token_hint` it trusts (`hints`), the confirmation it asks for without one (`pending`), and
telling the clients the session signed in to (`notices`)."""
