"""Client ID Metadata Documents: an https `client_id` names a JSON document describing the
client, which the provider fetches (IETF OAuth WG, "OAuth Client ID Metadata Document",
draft-ietf-oauth-client-id-metadata-document-02, July 2026; section numbers below are -02's).

Only while the tenant's registration policy allows it (`client_id_metadata_documents`, off
by default; host allow-list; cache lifetime bounds), and only for public clients.

- `urls`: the Client Identifier URL rules (§3)
- `addresses`: the address guard, public addresses only (§8.6)
- `fetcher`: https, TLS, pinned addresses, no redirects, size and time limits (§5, §8.6, §8.7)
- `documents`: the document's rules and the client it describes (§4, §4.1, §4.2)
- `caching`: HTTP freshness within the tenant's bounds, failures remembered briefly (§5.2)
- `registry`: cache, fetch and check, one object per application
- `resolver`: `metadata_document_client(request, client_id)`, the entry point
- `errors`: `MetadataDocumentError`, `FetchFailed`

Submodules are imported by name (`from .client_id_metadata.resolver import …`): `resolver`
reads the application keys of `..resources`, which imports `registry`.
"""
