"""Registry authentication: WWW-Authenticate challenges and bearer tokens (Docker token spec).

A registry answers 401 with a challenge: `Basic realm="..."` wants basic credentials on every
request; `Bearer realm="https://auth/token",service="reg",scope="repository:a/b:pull"` wants
a token fetched from `realm` (with basic credentials when we have them, anonymous otherwise).
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass, field

import httpx

from mesoslite.runtime.provisioner.credentials import Credential
from mesoslite.runtime.provisioner.errors import AuthenticationError, RegistryError

__all__ = ["BearerTokenCache", "Challenge", "basic_authorization", "parse_challenge"]

_AUTH_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')
# Tokens without expires_in last 60 s (the token spec's default).
_DEFAULT_TOKEN_LIFETIME_S = 60.0
# Refresh a little early so a token does not expire in flight.
_TOKEN_EXPIRY_MARGIN_S = 5.0


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "basic" or "bearer"
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(header: str) -> Challenge | None:
    """Parse one WWW-Authenticate value; None if it is empty or malformed."""
    scheme, _, rest = header.strip().partition(" ")
    if not scheme:
        return None
    params: dict[str, str] = {}
    for match in _AUTH_PARAM_RE.finditer(rest):
        quoted, bare = match.group(2), match.group(3)
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else (bare or "")
        params[match.group(1).lower()] = value
    return Challenge(scheme.lower(), params)


def basic_authorization(credential: Credential) -> str:
    token = base64.b64encode(f"{credential.username}:{credential.password}".encode()).decode()
    return f"Basic {token}"


@dataclass
class _Token:
    value: str
    expires_at_s: float


class BearerTokenCache:
    """Fetches and caches bearer tokens by (realm, service, scope)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http
        self._tokens: dict[tuple[str, str, str], _Token] = {}

    def forget(self, challenge: Challenge, scope: str) -> None:
        self._tokens.pop(self._key(challenge, scope), None)

    async def token(self, challenge: Challenge, scope: str, credential: Credential | None) -> str:
        key = self._key(challenge, scope)
        cached = self._tokens.get(key)
        if cached is not None and cached.expires_at_s > time.monotonic():
            return cached.value
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationError("bearer challenge without a realm")
        query: dict[str, str] = {}
        if challenge.params.get("service"):
            query["service"] = challenge.params["service"]
        if scope:
            query["scope"] = scope
        headers = {}
        if credential is not None:
            headers["Authorization"] = basic_authorization(credential)
        try:
            response = await self._http.get(realm, params=query, headers=headers)
        except httpx.HTTPError as error:
            raise RegistryError(f"token endpoint {realm}: {error}") from error
        if response.status_code in (401, 403):
            raise AuthenticationError(
                f"token endpoint {realm} refused the credentials ({response.status_code})",
                status_code=response.status_code,
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token endpoint {realm} answered {response.status_code}",
                status_code=response.status_code,
            )
        try:
            document = response.json()
        except ValueError as error:
            raise AuthenticationError(f"token endpoint {realm} did not answer JSON") from error
        value = document.get("token") or document.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthenticationError(f"token endpoint {realm} answered no token")
        expires_in = document.get("expires_in")
        lifetime_s = (
            float(expires_in)
            if isinstance(expires_in, int | float) and expires_in > 0
            else _DEFAULT_TOKEN_LIFETIME_S
        )
        self._tokens[key] = _Token(
            value, time.monotonic() + max(lifetime_s - _TOKEN_EXPIRY_MARGIN_S, 1.0)
        )
        return value

    @staticmethod
    def _key(challenge: Challenge, scope: str) -> tuple[str, str, str]:
        return (challenge.params.get("realm", ""), challenge.params.get("service", ""), scope)
