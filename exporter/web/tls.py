"""The TLS side of the HTTP server: the server context and the certificate's expiry.

The handshake itself runs in each connection's worker thread with a deadline (see
`exporter.web.server`), never on the listening socket. The certificate is read once, at start:
a renewed certificate takes a restart. Its expiry is logged when it is less than a week
away (or past) and exported as a gauge, so an alert can fire before clients refuse it.
"""

from __future__ import annotations

import logging
import re
import ssl
from datetime import datetime, timezone
from pathlib import Path

from exporter.config import ConfigError

log = logging.getLogger("ml_model_exporter.http")

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_UTC_TIME, _GENERALIZED_TIME, _EXPLICIT_VERSION = 0x17, 0x18, 0xA0


def server_context(cert_file: Path, key_file: Path, client_ca_file: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or later, no renegotiation; client certificates required with a CA file."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    try:
        context.load_cert_chain(cert_file, key_file)
        if client_ca_file:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca_file)
    except (OSError, ValueError) as err:  # ssl.SSLError is an OSError
        raise ConfigError([f"tls_server_config: cannot load {cert_file}: {err}"]) from None
    return context


def certificate_not_after(cert_file: Path) -> float:
    """The ``notAfter`` of the first certificate in a PEM file, in Unix seconds.

    Read from the DER with the standard library only: Certificate -> tbsCertificate ->
    [version], serialNumber, signature, issuer, validity -> notBefore, notAfter.
    """
    match = _PEM_CERTIFICATE.search(cert_file.read_text(encoding="ascii", errors="replace"))
    if match is None:
        raise ValueError(f"{cert_file}: no PEM certificate")
    der = ssl.PEM_cert_to_DER_cert(match.group(0))
    _, start, end = _der_items(der, 0, len(der))[0]  # Certificate
    _, start, end = _der_items(der, start, end)[0]  # tbsCertificate
    fields = _der_items(der, start, end)
    if fields[0][0] == _EXPLICIT_VERSION:
        fields = fields[1:]
    _, start, end = fields[3]  # validity
    tag, start, end = _der_items(der, start, end)[1]  # notAfter
    return _der_time(tag, der[start:end].decode("ascii"))


def _der_items(der: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each DER item from ``start`` to ``end``."""
    items = []
    pos = start
    while pos < end:
        tag, length = der[pos], der[pos + 1]
        pos += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        items.append((tag, pos, pos + length))
        pos += length
    if pos != end:
        raise ValueError("truncated DER")
    return items


def _der_time(tag: int, text: str) -> float:
    if tag == _UTC_TIME:  # YYMMDDHHMMSSZ, 50-99 meaning 19xx (RFC 5280)
        year = int(text[:2])
        text = f"{year + (1900 if year >= 50 else 2000)}{text[2:]}"
    elif tag != _GENERALIZED_TIME:
        raise ValueError(f"unexpected DER time tag {tag:#x}")
    moment = datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)
    return moment.timestamp()


def check_certificate_expiry(cert_file: Path, now: float, warning_days: float) -> float | None:
    """Log a warning when the certificate expires within ``warning_days`` (or has);
    return its expiry time, or None (and say so) when it cannot be read."""
    try:
        not_after = certificate_not_after(cert_file)
    except (OSError, ValueError, IndexError) as err:
        log.warning("cannot read the expiry of TLS certificate %s: %s", cert_file, err)
        return None
    when = datetime.fromtimestamp(not_after, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    days = (not_after - now) / 86400
    if days <= 0:
        log.warning(
            "TLS certificate %s EXPIRED on %s (%.1f days ago): clients that verify it "
            "refuse to connect; renew it and restart",
            cert_file,
            when,
            -days,
        )
    elif days <= warning_days:
        log.warning(
            "TLS certificate %s expires on %s, in %.1f days: renew it and restart",
            cert_file,
            when,
            days,
        )
    return not_after
