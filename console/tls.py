"""The console's TLS certificate: the configured one, or a self-signed one made on first use.

The self-signed certificate (ECDSA P-256, SHA-256, two years) names localhost, 127.0.0.1 and
the machine's host name; browsers warn until the operator installs a certificate from the
organisation's authority (``console.cert_file`` / ``console.key_file``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import SettingsError

if TYPE_CHECKING:
    from bot.settings import Settings

VALID_DAYS = 730


def certificate_paths(settings: Settings) -> tuple[Path, Path]:
    options = settings.console
    tls_dir = settings.paths.state_dir / "console" / "tls"
    return (options.cert_file or tls_dir / "cert.pem", options.key_file or tls_dir / "key.pem")


def ensure_certificate(settings: Settings) -> tuple[Path, Path, bool]:
    """The certificate and key paths; a self-signed pair is created when both default paths
    are missing. Returns (cert, key, created)."""
    cert, key = certificate_paths(settings)
    if cert.exists() and key.exists():
        return cert, key, False
    if settings.console.cert_file or settings.console.key_file:
        missing = cert if not cert.exists() else key
        raise SettingsError(f"console : fichier TLS introuvable : {missing} "
                            "(console.cert_file / console.key_file).")
    write_self_signed(cert, key)
    return cert, key, True


def write_self_signed(cert_path: Path, key_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    host = socket.gethostname()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "allo-caf console"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "allo-caf")])
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
           x509.IPAddress(ipaddress.ip_address("::1"))]
    if host and host != "localhost":
        alt.append(x509.DNSName(host))
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.chmod(0o700)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def harden(context: ssl.SSLContext) -> ssl.SSLContext:
    """TLS 1.2 at least; forward-secret AEAD suites only for TLS 1.2."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context
