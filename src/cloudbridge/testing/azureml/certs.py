"""A self-signed certificate for ``127.0.0.1``/``localhost``, so a fake serves HTTPS.

Azure SDKs refuse to send bearer tokens over plain http, so the Azure ML fake must speak TLS;
clients trust the certificate through ``REQUESTS_CA_BUNDLE`` (requests honours it). Made with the
``cryptography`` package (a dependency of azure-identity), or the ``openssl`` command when missing.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess

__all__ = ["self_signed_cert"]


def self_signed_cert(directory: str) -> tuple[str, str]:
    """Write ``cert.pem`` and ``key.pem`` for 127.0.0.1 into ``directory``; return their paths."""
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return _with_openssl(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(key_path, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with open(cert_path, "wb") as handle:
        handle.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _with_openssl(cert_path: str, key_path: str) -> tuple[str, str]:
    if not shutil.which("openssl"):
        raise RuntimeError("a self-signed certificate needs the 'cryptography' package or the openssl command")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key_path, "-out", cert_path],
        check=True, capture_output=True,
    )
    return cert_path, key_path
