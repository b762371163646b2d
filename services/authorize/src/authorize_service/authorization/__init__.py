"""The authorization endpoint (RFC 6749 §3.1, OIDC Core §3.1.2 and §3.2.2)."""
