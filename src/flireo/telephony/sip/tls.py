"""TLS contexts for SIP over TLS (RFC 3261 §26.2, RFC 5630).

The server context carries our certificate chain and key (the listener on
5061). The client context, for calls to ``transport: tls`` trunks, verifies the
trunk's certificate and host name against the configured CA file (or the
system's CAs) unless verification is turned off. Both require TLS 1.2 or newer.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsConfigError(ValueError):
    """The certificate, key or CA file cannot be loaded."""


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file))
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the SIP TLS certificate {cert_file}: {exc}") from exc
    return ctx


def client_context(ca_file: Path | None = None, *, verify: bool = True) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    try:
        if ca_file is not None:
            ctx.load_verify_locations(cafile=str(ca_file))
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(f"cannot load the SIP TLS CA file {ca_file}: {exc}") from exc
    return ctx


def contexts(
    cert_file: Path | None,
    key_file: Path | None,
    ca_file: Path | None,
    *,
    verify: bool,
) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
    """(server context or None when no certificate is set, client context)."""
    if (cert_file is None) != (key_file is None):
        raise TlsConfigError("set both FLIREO_SIP_TLS_CERT_FILE and FLIREO_SIP_TLS_KEY_FILE")
    server = (
        server_context(cert_file, key_file)
        if cert_file is not None and key_file is not None
        else None
    )
    return server, client_context(ca_file, verify=verify)
