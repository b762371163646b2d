"""One module per grant type of the token endpoint (RFC 6749 §4): `authorization_code`,
`client_credentials`, `refresh_token`; each exports `GRANT_TYPE` and its handler."""
