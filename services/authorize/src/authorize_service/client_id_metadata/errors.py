"""Why a Client ID Metadata Document could not be used, in words an end user can be shown."""

from __future__ import annotations


class MetadataDocumentError(Exception):
    """A `client_id` URL that names no usable client: the URL, the tenant's policy, the fetch
    or the document refused it. `detail` is a sentence for the error page (`/authorize`) or
    `error_description` (`invalid_client` at the token endpoint); it never carries a resolved
    address or anything else the requester could not already see."""

    title = "Application information unavailable"  # the error page's heading

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class FetchFailed(MetadataDocumentError):
    """The document could not be fetched. `host_wide` marks failures of the host itself
    (timeout, refused connection, TLS), which are remembered for the whole host so that a slow
    or dead host cannot be made to tie the provider up one URL at a time."""

    def __init__(self, detail: str, *, host_wide: bool = False) -> None:
        super().__init__(detail)
        self.host_wide = host_wide
