"""The token side of the provider: `POST /oauth/token` (`endpoint`, its `request` and
`client_auth`), one module per grant under `grants/`, and the tokens it hands out (`access_tokens`,
`id_tokens`, `refresh_tokens`, `authorization_codes`, `issuance` for a user's sign-in,
`revocations`, `client_grants`)."""
