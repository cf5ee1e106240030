"""Signing keys for bearer tokens: the public keys of a JWKS file or URL, and test key pairs.

A :class:`KeySet` holds the RS256 and ES256 keys of one JWK Set. A token naming a key id the set
does not hold makes it read its source again, at most once per ``refetch_interval_s``, so a key
the identity provider rotates in is picked up without a restart, while a stream of tokens with
made-up key ids cannot become a stream of requests to the provider. A set older than
``max_age_s`` is read again too, so a key the provider withdraws stops verifying. A failed read
keeps the keys of the last good one.

The ``generate_*`` functions and :func:`write_jwks` make real key pairs for tests and the
development CLI; production keys come from an identity provider.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt import PyJWK
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWKError

from orchestrator.errors import AuthConfigError, UnauthorizedError
from orchestrator.telemetry import get_logger

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "KeySet",
    "generate_ec_key",
    "generate_rsa_jwks",
    "generate_rsa_key",
    "public_jwk",
    "write_jwks",
]

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "ES256"})
REFETCH_INTERVAL_S = 30.0
MAX_AGE_S = 900.0
FETCH_TIMEOUT_S = 5.0

_log = get_logger("orchestrator.api.auth")


class KeySet:
    """The RS256/ES256 public keys of one JWK Set, read from a file path or an http(s) URL."""

    def __init__(
        self,
        source: Path | str,
        *,
        refetch_interval_s: float = REFETCH_INTERVAL_S,
        max_age_s: float = MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(source, str) and not source.startswith(("https://", "http://")):
            raise AuthConfigError(f"jwks_url must be an http(s) URL, not {source!r}")
        self._source = source
        self._refetch_interval_s = refetch_interval_s
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        # Replaced whole, never mutated: readers use it without the lock.
        self._keys: tuple[PyJWK, ...] = ()
        self._read_at: float | None = None

    @property
    def source(self) -> str:
        """The file path or URL the keys come from."""
        return str(self._source)

    def load(self) -> None:
        """Read the source now; raises :class:`AuthConfigError` if it holds no usable key."""
        with self._lock:
            self._read_at = self._clock()
            self._keys = _read_jwks(self._source)

    def key(self, kid: str | None) -> PyJWK:
        """The key named ``kid`` (or the only key, for a token naming none).

        Reads the source again first when the key is unknown or the set is older than
        ``max_age_s``, unless the last read is younger than ``refetch_interval_s``. Raises
        :class:`UnauthorizedError` when no key fits.
        """
        if self._read_at is None or self._clock() - self._read_at >= self._max_age_s:
            self._refresh()
        found = _find(self._keys, kid)
        if found is None:
            self._refresh()
            found = _find(self._keys, kid)
        if found is not None:
            return found
        if not self._keys:
            raise UnauthorizedError(f"no signing keys available from {self.source}")
        if kid is None:
            raise UnauthorizedError("token names no key id and the key set holds several keys")
        raise UnauthorizedError(f"unknown key id {kid!r}")

    def _refresh(self) -> None:
        with self._lock:
            now = self._clock()
            # Checked under the lock: threads that queued behind one read do not read again.
            if self._read_at is not None and now - self._read_at < self._refetch_interval_s:
                return
            self._read_at = now
            try:
                self._keys = _read_jwks(self._source)
            except AuthConfigError as exc:
                _log.warning("jwks_read_failed", source=self.source, error=str(exc))


def _find(keys: tuple[PyJWK, ...], kid: str | None) -> PyJWK | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.key_id == kid), None)


def _read_jwks(source: Path | str) -> tuple[PyJWK, ...]:
    """The usable keys of the JWK Set at ``source``; :class:`AuthConfigError` if there are none."""
    try:
        if isinstance(source, Path):
            raw = source.read_bytes()
        else:
            response = httpx.get(source, timeout=FETCH_TIMEOUT_S)
            response.raise_for_status()
            raw = response.content
        document = orjson.loads(raw)
    except (OSError, httpx.HTTPError, orjson.JSONDecodeError) as exc:
        raise AuthConfigError(f"cannot read JWKS from {source}: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AuthConfigError(f"JWKS at {source} has no 'keys' list")
    keys = tuple(key for key in map(_parse_jwk, entries) if key is not None)
    if not keys:
        raise AuthConfigError(f"JWKS at {source} holds no RS256 or ES256 key")
    return keys


def _parse_jwk(entry: object) -> PyJWK | None:
    """The key of one JWKS entry, or None for an entry this verifier cannot use (HMAC, RS512...)."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    try:
        key = PyJWK(entry)
    except PyJWKError:
        return None
    return key if key.algorithm_name in ASYMMETRIC_ALGORITHMS else None


# Test and development keys ---------------------------------------------------------------------


def generate_rsa_key() -> str:
    """A new 2048-bit RSA private key, PEM (PKCS#8), for signing RS256 tokens."""
    return _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))


def generate_ec_key() -> str:
    """A new P-256 private key, PEM (PKCS#8), for signing ES256 tokens."""
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def public_jwk(private_key_pem: str, kid: str) -> dict[str, Any]:
    """The public JWK (with ``kid``, ``alg`` and ``use``) of an RSA or P-256 private key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        jwk, algorithm = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "RS256"
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk, algorithm = ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "ES256"
    else:
        raise TypeError(f"expected an RSA or EC private key, got {type(key).__name__}")
    assert isinstance(jwk, dict)
    return {**jwk, "kid": kid, "alg": algorithm, "use": "sig"}


def write_jwks(path: Path, keys: Iterable[Mapping[str, Any]]) -> Path:
    """Write a JWK Set of ``keys`` to ``path`` atomically (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(orjson.dumps({"keys": list(keys)}, option=orjson.OPT_INDENT_2))
    os.replace(partial, path)
    return path


def generate_rsa_jwks(directory: Path, kid: str = "dev-rsa") -> tuple[str, Path]:
    """A new RSA key: its private PEM, and ``directory/jwks.json`` holding its public JWK."""
    directory.mkdir(parents=True, exist_ok=True)
    private_key_pem = generate_rsa_key()
    path = write_jwks(directory / "jwks.json", [public_jwk(private_key_pem, kid)])
    return private_key_pem, path


def _pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode()
