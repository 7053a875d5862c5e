"""Former home of the Business Central emulation, now the :mod:`.business_central` package;
kept so ``nav_crm_ops.sandbox.businesscentral`` imports keep resolving."""

from __future__ import annotations

from .business_central import BCError, BusinessCentralService, Reply, build_bc_app, etag_for

__all__ = ["BCError", "BusinessCentralService", "Reply", "build_bc_app", "etag_for"]
