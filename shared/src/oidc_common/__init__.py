"""Library shared by the OpenID Connect services.

Configuration, JSON logging, storage and broker clients bound to the aiohttp application
lifecycle, event envelopes, error bodies, tenant resolution, health and metrics endpoints,
credential hashing, signing-key encryption and Management API token verification; and the
rules two services apply alike: client metadata and redirect URIs (registration and
`/authorize`), the registration-policy contract (tenant-settings and registration).
"""
