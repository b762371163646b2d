"""Grants: what a user allowed a third-party client, the unit of consent and of revocation
(`repository`), taken back with everything issued under it (`revoking`), and Auth0's
`/api/v2/grants` (`management_api`)."""
