"""The host's own gRPC services for plugins (PowerX's STS and IAM), see ``server.py``."""

from powerx.host.upstream.calls import CallRecord
from powerx.host.upstream.server import UpstreamServer
from powerx.host.upstream.tenancy import TenantDirectory

__all__ = ["CallRecord", "TenantDirectory", "UpstreamServer"]
