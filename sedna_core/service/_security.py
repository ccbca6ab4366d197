"""Secure-by-default rules: bind checks, bearer tokens, TLS contexts."""

from __future__ import annotations

import hmac
import ipaddress
import ssl

from sedna_core.config import ServiceConfig
from sedna_core.errors import ConfigError
from sedna_core.log import get_logger

__all__ = [
    "check_bearer",
    "check_service_config",
    "client_ssl_context",
    "is_loopback",
    "server_ssl_context",
]

log = get_logger(__name__)


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname or "" (all interfaces): assume reachable from outside


def _var(config: ServiceConfig, field: str) -> str:
    """How the user spells ``field``: its environment variable(s), for error messages."""
    names = type(config).env_names().get(field)
    return f"{field} ({'/'.join(names)})" if names else field


def check_service_config(config: ServiceConfig) -> None:
    """Refuse unsafe or inconsistent settings before binding; warn loudly when told insecure."""
    if bool(config.tls_cert) != bool(config.tls_key):
        missing = "tls_key" if config.tls_cert else "tls_cert"
        raise ConfigError(
            _var(config, missing), None, "a PEM file path: TLS needs both a certificate and a key"
        )
    if config.token is not None and not config.token.strip():
        raise ConfigError(_var(config, "token"), config.token, "a non-empty secret")
    if is_loopback(config.host):
        return
    if not config.token:
        if not config.insecure:
            raise ConfigError(
                _var(config, "host"),
                config.host,
                "a loopback address (127.0.0.1) unless a token is set "
                f"({_var(config, 'token')}); to expose an unauthenticated server anyway, "
                f"set {_var(config, 'insecure')}",
            )
        log.warning(
            "INSECURE: serving without authentication on a non-loopback address; "
            "anyone who can reach it can use it",
            host=config.host,
            port=config.port,
        )
    elif not config.tls_cert:
        log.warning(
            "serving on a non-loopback address without TLS: the bearer token travels in clear text",
            host=config.host,
            port=config.port,
        )


def server_ssl_context(config: ServiceConfig) -> ssl.SSLContext | None:
    """The server's TLS context from ``tls_cert``/``tls_key``, or None for plain HTTP."""
    if not (config.tls_cert and config.tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            _var(config, "tls_cert"),
            config.tls_cert,
            f"a readable PEM certificate matching the key {config.tls_key!r} ({exc})",
        ) from exc
    return ctx


def client_ssl_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context trusting ``ca_file`` (else the system's trust store)."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "ca_file (SEDNA_TLS_CA)", ca_file, f"a readable PEM CA bundle ({exc})"
        ) from exc
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def check_bearer(header: str | None, token: str) -> bool:
    """True when an ``Authorization`` header carries ``Bearer <token>`` (constant-time compare)."""
    if not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # aiohttp decodes header bytes that are not UTF-8 as surrogates: compare them as the bytes
    # that were sent (never equal to a valid token), instead of failing to encode them
    try:
        sent = presented.strip().encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate outside the escape range: not our token
        return False
    return hmac.compare_digest(sent, token.encode("utf-8", "surrogatepass"))
