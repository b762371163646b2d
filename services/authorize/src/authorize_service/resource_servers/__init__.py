"""APIs (resource servers): the model and its reader (`ResourceServer`,
`find_resource_server`), and the `/api/v2/resource-servers` Management API
(`resource_servers.management_api`)."""

from .repository import ResourceServer, find_resource_server

__all__ = ["ResourceServer", "find_resource_server"]
