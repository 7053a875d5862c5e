"""The embedded sandbox: local Dataverse Web API and Business Central API v2.0 services.

It speaks the real services' wire protocols so that the connectors built against it work
unchanged against the real ones. See ``docs/sandbox.md``.
"""

from .server import Sandbox, SandboxInfo

__all__ = ["Sandbox", "SandboxInfo"]
