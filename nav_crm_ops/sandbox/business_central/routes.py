"""Business Central request paths: API, tenant, environment, company, entity set, key, action."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..bc_schema import BC_SERVICE, COMPUTED_ENTITIES, bc_entity
from ..odata.coercion import GUID
from ..odata.replies import json_object
from ..odata.service import ServiceBase
from ..schema import EntityDef
from .common import (
    CUSTOM_API,
    SEGMENT,
    STANDARD_API,
    BCError,
    Target,
    clean_key,
    not_found_uri,
)


class BusinessCentralRoutes(ServiceBase):
    """Parsing request paths and finding the addressed records."""

    def _route(self, path: str) -> Target:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        api, root, rest = self._api_root(parts)
        if rest == ["$batch"]:
            return Target(api, root, batch=True)
        if not rest or not rest[0]:
            raise not_found_uri("")
        first = SEGMENT.match(rest[0])
        if first is None or first.group("name") != "companies":
            raise not_found_uri(rest[0])
        company = first.group("key")
        if company is not None:
            company = self._check_company(company)
        if len(rest) == 1:
            return Target(api, root, company=company, key=company)
        if company is None:
            raise BCError(400, "BadRequest",
                          "A company must be specified: companies(<id>)/<entity>.")
        return self._target_from_segments(api, root, company, _parse_segments(rest[1:]))

    def _api_root(self, parts: list[str]) -> tuple[str, str, list[str]]:
        """``v2.0/{tenant}/{environment}/api/{api}/…`` → (api, its public root URL, the
        segments after it), checking the tenant and environment."""
        info = self.ctx.info
        if len(parts) < 4 or parts[0] != "v2.0" or parts[3] != "api":
            raise BCError(404, "BadRequest_NotFound",
                          f"No HTTP resource was found that matches the request URI "
                          f"'/{'/'.join(parts)}'.")
        tenant, environment = parts[1], parts[2]
        if tenant.lower() != info.tenant.lower():
            raise BCError(404, "NotFound", f"Tenant '{tenant}' was not found; use "
                                           f"'{info.tenant}'.")
        if environment != info.environment:
            raise BCError(404, "NoEnvironment",
                          f"The environment '{environment}' does not exist for tenant "
                          f"'{info.tenant}'; use '{info.environment}'.")
        rest = parts[4:]
        if rest[:1] == [STANDARD_API]:
            api, rest = STANDARD_API, rest[1:]
        elif rest[:3] == CUSTOM_API.split("/"):
            api, rest = CUSTOM_API, rest[3:]
        else:
            # An API group no installed extension publishes (the custom API before the
            # extension is installed) answers as BC does for any unmatched URI.
            raise BCError(404, "BadRequest_NotFound",
                          f"No HTTP resource was found that matches the request URI "
                          f"'{info.base_url}/bc/{'/'.join(parts)}'. (The sandbox publishes "
                          f"'{STANDARD_API}' and '{CUSTOM_API}'.)")
        base = f"{info.base_url}/bc/v2.0/{info.tenant}/{info.environment}/api/"
        return api, f"{base}{api}/", rest

    def _target_from_segments(self, api: str, root: str, company: str,
                              parsed: list[tuple[str, str | None]]) -> Target:
        parsed, count, action = _peel(parsed)
        if not parsed or len(parsed) > 2:
            raise not_found_uri("/".join(n for n, _ in parsed))
        for name, _ in parsed:
            self._check_api(api, name)
        (name, key), parent = parsed[-1], (parsed[0] if len(parsed) == 2 else None)
        if parent is not None and not _nests(parent, name):
            raise not_found_uri(name)
        if action is not None and (key is None or count):
            raise not_found_uri(f"Microsoft.NAV.{action}")
        return Target(api, root, entity_set=name, key=key,
                      parent_set=parent[0] if parent else None,
                      parent_key=parent[1] if parent else None, action=action, count=count,
                      company=company)

    def _check_api(self, api: str, name: str) -> None:
        entity = bc_entity(name)
        if entity is not None:
            wanted = "custom" if api == CUSTOM_API else "v2.0"
            if entity.extra.get("api", "v2.0") != wanted:
                raise not_found_uri(name)
            return
        computed = COMPUTED_ENTITIES.get(name)
        if computed is None or computed != ("custom" if api == CUSTOM_API else "v2.0"):
            raise not_found_uri(name)

    def _check_company(self, key: str) -> str:
        company = clean_key(key).lower()
        if not GUID.match(company) or self.store.get(f"{BC_SERVICE}:companies",
                                                       company) is None:
            raise BCError(404, "Internal_CompanyNotFound",
                          f"The company '{company}' does not exist or you do not have access "
                          "to it.")
        return company

    def _entity(self, name: str) -> EntityDef:
        entity = bc_entity(name)
        if entity is None:
            raise not_found_uri(name)
        return entity

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        return json_object(
            body, lambda exc: BCError(400, "BadRequest",
                                      f"The request body is not valid JSON: {exc.args[0]}."),
            lambda: BCError(400, "BadRequest", "The request body must be a JSON object."))

    def _qualified(self, entity: EntityDef) -> str:
        return f"{BC_SERVICE}:{entity.name}"

    def _fetch(self, entity: EntityDef, key: str) -> dict[str, Any]:
        clean = key.lower()
        row = self.store.get(self._qualified(entity), clean) if GUID.match(clean) else None
        if row is None:
            raise BCError(404, "Internal_RecordNotFound",
                          f"The {entity.extra.get('label', entity.name)} does not exist. "
                          f"Identification fields and values: Id='{key}'")
        return row


def _parse_segments(segments: list[str]) -> list[tuple[str, str | None]]:
    """Path segments after ``companies(<id>)`` → [(name, key or None)]."""
    parsed: list[tuple[str, str | None]] = []
    for text in segments:
        if text == "$count":
            parsed.append(("$count", None))
            continue
        match = SEGMENT.match(text)
        if match is None:
            raise not_found_uri(text)
        key = match.group("key")
        parsed.append((match.group("name"), clean_key(key) if key is not None else None))
    return parsed


def _peel(parsed: list[tuple[str, str | None]],
          ) -> tuple[list[tuple[str, str | None]], bool, str | None]:
    """Take a trailing ``$count`` and bound action off the segments: → (the entity
    segments, whether ``$count`` was asked, the action's name or None)."""
    count = bool(parsed) and parsed[-1][0] == "$count"
    if count:
        parsed = parsed[:-1]
    action = None
    if parsed and parsed[-1][0].startswith("Microsoft.NAV."):
        action = parsed[-1][0][len("Microsoft.NAV."):]
        parsed = parsed[:-1]
    return parsed, count, action


def _nests(parent: tuple[str, str | None], name: str) -> bool:
    """Whether ``name`` may follow ``parent(<key>)`` (document lines, contact relations)."""
    parent_entity = bc_entity(parent[0])
    child = bc_entity(name)
    nested = parent_entity is not None and (
        parent_entity.extra.get("lines") == name
        or (child is not None and parent[0] in child.extra.get("parents", {})))
    return nested and parent[1] is not None
