"""Who may call the HTTP API: bearer JWTs verified into a :class:`Principal`.

Tokens are RS256 or ES256, verified against a JWK Set read from a file or URL, or HS256 with a
shared secret for development. The key follows the token's ``alg`` header, among configured
sources only: HS256 uses the secret and nothing else, RS256/ES256 use a JWKS key of that same
algorithm. ``none`` and every other algorithm are refused, so an HS256 token signed with an RSA
public key fails.

Claim rules:

- ``sub`` (the principal's name) and ``exp`` are required; ``nbf`` and ``iat`` are checked when
  present; ``iss`` and ``aud`` when configured; every time check allows ``leeway_s``.
- Roles are the union of the ``roles`` list and of the ``orchestrator:<role>`` scopes in the
  space-separated OAuth2 ``scope`` string. Unknown names are ignored. A role includes the roles
  below it: viewer < operator < admin. A token with no known role is forbidden.
- Namespaces are the union of the ``namespaces`` list and the ``namespace`` string; ``"*"``
  means every namespace. A token with neither sees no namespace.

This module has no ``from __future__ import annotations``: FastAPI reads a dependency's
annotations at run time, and the dependencies built below name local variables in them.
"""

import enum
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from orchestrator.api.auth_keys import ASYMMETRIC_ALGORITHMS, KeySet
from orchestrator.errors import AuthConfigError, AuthError, ForbiddenError, UnauthorizedError

__all__ = [
    "ALL_NAMESPACES",
    "DEVELOPMENT_PRINCIPAL",
    "AuthConfig",
    "Authenticator",
    "Principal",
    "Role",
    "as_http_exception",
    "issue_hs256_token",
    "issue_token",
    "principal_dependency",
    "require_role",
]

ALL_NAMESPACES = "*"
SCOPE_PREFIX = "orchestrator:"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key is at least as long as the hash


class Role(enum.IntEnum):
    """What a principal may do; each role includes every role below it."""

    VIEWER = 1
    """Reads workflows, tasks, definitions and the log."""
    OPERATOR = 2
    """Also starts workflows, runs lifecycle operations, signals and completes human tasks."""
    ADMIN = 3
    """Also registers and deletes workflow and task definitions."""

    @property
    def claim(self) -> str:
        """The role's name in a token's ``roles`` claim: ``viewer``, ``operator``, ``admin``."""
        return self.name.lower()


_ROLE_BY_CLAIM = {role.claim: role for role in Role}


@dataclass(frozen=True)
class Principal:
    """A verified caller: its subject, its roles and the namespaces it may touch."""

    subject: str
    roles: frozenset[Role]
    namespaces: frozenset[str]

    def has(self, role: Role) -> bool:
        """Whether the principal holds ``role`` or a higher one."""
        return any(held >= role for held in self.roles)

    def sees(self, namespace: str) -> bool:
        """Whether the principal may touch ``namespace`` (named, or every one with ``"*"``)."""
        return ALL_NAMESPACES in self.namespaces or namespace in self.namespaces

    def require(self, role: Role, namespace: str | None = None) -> None:
        """Raise :class:`ForbiddenError` unless it holds ``role`` and sees ``namespace``."""
        if not self.has(role):
            raise ForbiddenError(f"role '{role.claim}' or higher required")
        if namespace is not None and not self.sees(namespace):
            raise ForbiddenError(f"namespace '{namespace}' not allowed")


DEVELOPMENT_PRINCIPAL = Principal("anonymous", frozenset(Role), frozenset({ALL_NAMESPACES}))


class AuthConfig(BaseModel):
    """How bearer tokens are verified; ``enabled=False`` lets every request in as admin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = True
    hs256_secret: SecretStr | None = Field(
        default=None, description="shared HS256 secret, development"
    )
    jwks_file: Path | None = Field(default=None, description="JWK Set file with RS256/ES256 keys")
    jwks_url: str | None = Field(default=None, description="URL of the identity provider's JWK Set")
    issuer: str | None = Field(default=None, description="required 'iss' claim, when set")
    audience: str | None = Field(default=None, description="required 'aud' claim, when set")
    leeway_s: int = Field(default=30, ge=0, description="clock skew allowed on exp, nbf and iat")


@dataclass(frozen=True)
class _Verifier:
    """One configuration's keys; replaced whole on reconfiguration."""

    config: AuthConfig
    secret: bytes | None
    keys: KeySet | None

    @classmethod
    def build(cls, config: AuthConfig, clock: Callable[[], float]) -> "_Verifier":
        if not config.enabled:
            return cls(config, None, None)
        if config.hs256_secret is None and config.jwks_file is None and config.jwks_url is None:
            raise AuthConfigError(
                "authentication is enabled but no key source is configured: "
                "set hs256_secret, jwks_file or jwks_url, or disable authentication"
            )
        if config.jwks_file is not None and config.jwks_url is not None:
            raise AuthConfigError("set jwks_file or jwks_url, not both")
        secret = None
        if config.hs256_secret is not None:
            secret = config.hs256_secret.get_secret_value().encode()
            if len(secret) < MIN_SECRET_BYTES:
                raise AuthConfigError(f"hs256_secret must be at least {MIN_SECRET_BYTES} bytes")
        keys = None
        if config.jwks_file is not None:
            keys = KeySet(config.jwks_file, clock=clock)
            keys.load()  # a broken file fails now, not on the first request
        elif config.jwks_url is not None:
            keys = KeySet(config.jwks_url, clock=clock)  # fetched on first use
        return cls(config, secret, keys)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token``; raises :class:`UnauthorizedError` naming what is wrong."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise UnauthorizedError("token malformed") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or not (kid is None or isinstance(kid, str)):
            raise UnauthorizedError("token header malformed")
        key = self._key_for(algorithm, kid)
        config = self.config
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=config.issuer,
                audience=config.audience,
                leeway=config.leeway_s,
                options={"require": ["exp", "sub"], "verify_aud": config.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(_reason(exc)) from None

    def _key_for(self, algorithm: str, kid: str | None) -> Any:
        if algorithm == "HS256" and self.secret is not None:
            return self.secret
        if algorithm in ASYMMETRIC_ALGORITHMS and self.keys is not None:
            jwk = self.keys.key(kid)
            if jwk.algorithm_name != algorithm:
                raise UnauthorizedError(f"key {kid!r} does not sign {algorithm}")
            return jwk.key
        raise UnauthorizedError(f"algorithm {algorithm!r} not accepted")


# Checked in order: InvalidSignatureError is a DecodeError, so it comes first.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidSignatureError, "signature invalid"),
    (jwt.InvalidIssuerError, "issuer invalid"),
    (jwt.InvalidAudienceError, "audience invalid"),
    (jwt.DecodeError, "token malformed"),
)


def _reason(exc: jwt.PyJWTError) -> str:
    """What is wrong with a token, in words that never quote the token."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"claim '{exc.claim}' missing"
    reason = next((text for kind, text in _REASONS if isinstance(exc, kind)), None)
    return reason or f"token invalid: {exc}"


VERIFIED_CACHE_SIZE = 10_000


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`; keys swap on reconfigure."""

    def __init__(self, config: AuthConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        """Raises :class:`AuthConfigError` when enabled without a usable key source."""
        self._clock = clock
        self._verifier = _Verifier.build(config, clock)
        self._verified: dict[str, tuple[_Verifier, Principal, float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether tokens are checked; when not, every request is the development principal."""
        return self._verifier.config.enabled

    def reconfigure(self, config: AuthConfig) -> None:
        """Verify with ``config`` from now on; a bad config raises and leaves the old one."""
        # Built before the swap; the swap is one reference assignment, so a request sees either
        # the old verifier or the new one, never a mix.
        self._verifier = _Verifier.build(config, self._clock)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <jwt>`` header value.

        Raises :class:`UnauthorizedError` when the header is missing or malformed or the token
        does not verify. Roles and namespaces are not checked here: see :meth:`Principal.require`.
        """
        verifier = self._verifier
        if not verifier.config.enabled:
            return DEVELOPMENT_PRINCIPAL
        token = _bearer_token(authorization)
        # A verified token is remembered until it expires (no leeway), for the verifier that
        # checked it: a reconfiguration makes every remembered token verify again.
        remembered = self._verified.get(token)
        if remembered is not None and remembered[0] is verifier and time.time() < remembered[2]:
            return remembered[1]
        claims = verifier.verify(token)
        principal = _principal_of(claims)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (verifier, principal, float(claims["exp"]))
        return principal


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise UnauthorizedError("bearer token missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError("authorization header is not 'Bearer <token>'")
    return token.strip()


def _principal_of(claims: Mapping[str, Any]) -> Principal:
    scopes = _string(claims, "scope").split()
    names = [*_strings(claims, "roles"), *(s.removeprefix(SCOPE_PREFIX) for s in scopes)]
    namespaces = [*_strings(claims, "namespaces"), _string(claims, "namespace")]
    return Principal(
        subject=claims["sub"],
        roles=frozenset(_ROLE_BY_CLAIM[name] for name in names if name in _ROLE_BY_CLAIM),
        namespaces=frozenset(namespace for namespace in namespaces if namespace),
    )


def _strings(claims: Mapping[str, Any], name: str) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise UnauthorizedError(f"claim '{name}' is not a list of strings")
    return value


def _string(claims: Mapping[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise UnauthorizedError(f"claim '{name}' is not a string")
    return value


# FastAPI ---------------------------------------------------------------------------------------

_BEARER = HTTPBearer(auto_error=False, description="JWT with roles and namespaces claims")


def as_http_exception(error: AuthError) -> HTTPException:
    """403 for a :class:`ForbiddenError`, otherwise 401 with a ``WWW-Authenticate`` challenge."""
    if isinstance(error, ForbiddenError):
        return HTTPException(403, detail=str(error))
    return HTTPException(401, detail=str(error), headers={"WWW-Authenticate": "Bearer"})


def principal_dependency(
    get_authenticator: Callable[[], Authenticator],
) -> Callable[[HTTPAuthorizationCredentials | None], Principal]:
    """A FastAPI dependency giving the request's principal: 401 unless verified, 403 without a role.

    It also declares the bearer security scheme in the OpenAPI document.
    """

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    ) -> Principal:
        header = None if credentials is None else f"Bearer {credentials.credentials}"
        try:
            found = get_authenticator().authenticate(header)
            found.require(Role.VIEWER)
        except AuthError as error:
            raise as_http_exception(error) from None
        return found

    return principal


def require_role(
    role: Role, principal: Callable[..., Principal]
) -> Callable[[Principal], Principal]:
    """A FastAPI dependency giving the principal of ``principal`` if it holds ``role``, else 403."""

    def allowed(found: Annotated[Principal, Depends(principal)]) -> Principal:
        try:
            found.require(role)
        except ForbiddenError as error:
            raise as_http_exception(error) from None
        return found

    return allowed


# Tokens for tests and the development CLI ------------------------------------------------------


def issue_token(
    key: str | bytes,
    *,
    subject: str,
    roles: Iterable[Role | str],
    namespaces: Iterable[str],
    algorithm: str = "HS256",
    kid: str | None = None,
    ttl_s: int = 3600,
    claims: Mapping[str, Any] | None = None,
) -> str:
    """A signed token for ``subject``; ``claims`` add to or override the standard ones."""
    now = int(time.time())
    payload = {
        "sub": subject,
        "roles": [role.claim if isinstance(role, Role) else role for role in roles],
        "namespaces": sorted(set(namespaces)),
        "iat": now,
        "exp": now + ttl_s,
        **(claims or {}),
    }
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid} if kid else None)


def issue_hs256_token(
    secret: str | SecretStr,
    subject: str,
    roles: Iterable[Role | str],
    namespaces: Iterable[str],
    ttl_s: int = 3600,
) -> str:
    """An HS256 token for ``subject``, valid for ``ttl_s`` seconds, signed with ``secret``."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    return issue_token(secret, subject=subject, roles=roles, namespaces=namespaces, ttl_s=ttl_s)
