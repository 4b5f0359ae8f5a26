"""Every Realtime URL, in one place (reference section 3).

========================  =======================================================================================
kind                      URLs
========================  =======================================================================================
Azure GA                  ``https://{resource}.openai.azure.com/openai/v1/realtime`` (+ ``/client_secrets``,
                          ``/calls``); WebSocket ``wss://.../openai/v1/realtime?model={deployment}``
Azure preview             ``wss://{resource}.openai.azure.com/openai/realtime?api-version=...&deployment=...``
                          (beta event names, flat session; deprecated by Azure on 2026-04-30)
OpenAI                    ``https://api.openai.com/v1/realtime`` (+ ``/client_secrets``, ``/calls``)
any base URL              e.g. the local engine ``http://127.0.0.1:8765/v1`` -> ``ws://127.0.0.1:8765/v1/realtime``
========================  =======================================================================================

A GA URL never carries ``api-version`` (Azure answers 401 to that, pitfall 6.9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from .errors import ConfigError

__all__ = ["Endpoint"]

_RESOURCE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$", re.I)
_DEFAULT_PREVIEW_VERSION = "2025-04-01-preview"


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """Where a Realtime session lives. Build one with :meth:`azure`, :meth:`azure_preview`, :meth:`openai` or
    :meth:`local`; read its URLs from the properties."""

    kind: Literal["azure", "azure_preview", "openai", "custom"]
    base_url: str  # http(s) URL up to and including the API root (".../openai/v1", ".../v1", ".../openai")
    model: str | None = None  # model or Azure deployment name
    api_version: str | None = None  # preview only

    # -- constructors ---------------------------------------------------------------------------------------

    @classmethod
    def azure(cls, *, resource: str | None = None, deployment: str, endpoint: str | None = None) -> Endpoint:
        """Azure OpenAI GA. Give the resource name (``my-res``) or the full ``endpoint`` URL."""
        return cls(kind="azure", base_url=_azure_base(resource, endpoint) + "/openai/v1", model=_name(deployment))

    @classmethod
    def azure_preview(
        cls,
        *,
        resource: str | None = None,
        deployment: str,
        api_version: str = _DEFAULT_PREVIEW_VERSION,
        endpoint: str | None = None,
    ) -> Endpoint:
        """Azure OpenAI preview (``/openai/realtime?api-version=...&deployment=...``): beta names, flat session."""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(-preview)?", api_version):
            raise ConfigError(f"api_version {api_version!r} is not a date like 2025-04-01-preview", field="api_version")
        return cls(
            kind="azure_preview",
            base_url=_azure_base(resource, endpoint) + "/openai",
            model=_name(deployment),
            api_version=api_version,
        )

    @classmethod
    def openai(cls, *, model: str = "gpt-realtime", base_url: str = "https://api.openai.com/v1") -> Endpoint:
        return cls(kind="openai", base_url=_http_base(base_url), model=_name(model))

    @classmethod
    def local(cls, base_url: str = "http://127.0.0.1:8765/v1", *, model: str = "gpt-realtime") -> Endpoint:
        """Any GA-compatible base URL, such as the local engine (``aoai-realtime engine``)."""
        return cls(kind="custom", base_url=_http_base(base_url), model=_name(model))

    # -- URLs -----------------------------------------------------------------------------------------------

    @property
    def dialect(self) -> Literal["ga", "beta"]:
        return "beta" if self.kind == "azure_preview" else "ga"

    @property
    def realtime_url(self) -> str:
        return self.base_url + "/realtime"

    @property
    def client_secrets_url(self) -> str:
        """POST here (JSON) to mint an ephemeral token. GA only."""
        self._require_ga("client_secrets")
        return self.realtime_url + "/client_secrets"

    @property
    def calls_url(self) -> str:
        """POST an SDP offer here (``application/sdp``, Bearer ephemeral token) to start a WebRTC call. GA only."""
        self._require_ga("calls")
        return self.realtime_url + "/calls"

    def websocket_url(self, *, call_id: str | None = None, extra_query: dict[str, str] | None = None) -> str:
        """The WebSocket URL; with ``call_id``, the sideband socket of a running WebRTC call."""
        scheme, netloc, path, _, _ = urlsplit(self.realtime_url)
        ws_scheme = {"https": "wss", "http": "ws"}[scheme]
        query: dict[str, str] = {}
        if self.kind == "azure_preview":
            if call_id is not None:
                raise ConfigError("sideband sockets (call_id) need a GA endpoint", field="call_id")
            assert self.api_version is not None
            assert self.model is not None
            query = {"api-version": self.api_version, "deployment": self.model}
        elif call_id is not None:
            query = {"call_id": call_id}
        elif self.model is not None:
            query = {"model": self.model}
        query.update(extra_query or {})
        return urlunsplit((ws_scheme, netloc, path, urlencode(query), ""))

    def call_url(self, call_id: str, action: Literal["accept", "reject", "refer", "hangup"]) -> str:
        self._require_ga("calls")
        return f"{self.realtime_url}/calls/{call_id}/{action}"

    def _require_ga(self, what: str) -> None:
        if self.kind == "azure_preview":
            raise ConfigError(f"the preview API has no /{what} route; use Endpoint.azure(...) (GA)", field="kind")

    def __repr__(self) -> str:
        return f"Endpoint(kind={self.kind!r}, base_url={self.base_url!r}, model={self.model!r})"


def _name(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "/?#&= "):
        raise ConfigError(f"model/deployment name {value!r} is empty or has URL characters", field="model")
    return value


def _http_base(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"base URL {url!r} must be an absolute http(s) URL", field="base_url")
    if parts.query or parts.fragment:
        raise ConfigError(f"base URL {url!r} must not carry a query or fragment", field="base_url")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _azure_base(resource: str | None, endpoint: str | None) -> str:
    if (resource is None) == (endpoint is None):
        raise ConfigError("give exactly one of resource= or endpoint=", field="resource")
    if resource is not None:
        if not _RESOURCE.match(resource):
            raise ConfigError(f"Azure resource name {resource!r} is not valid", field="resource")
        return f"https://{resource}.openai.azure.com"
    assert endpoint is not None
    base = _http_base(endpoint)
    # Accept an endpoint given with the API root already on it.
    for suffix in ("/openai/v1", "/openai"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base
