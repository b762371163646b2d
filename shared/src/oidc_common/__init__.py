"""Library shared by the OpenID Connect services.

Configuration, JSON logging, storage and broker clients bound to the aiohttp application
lifecycle, event envelopes, error bodies, tenant resolution, health and metrics endpoints,
credential hashing, signing-key encryption and Management API token verification.
"""
