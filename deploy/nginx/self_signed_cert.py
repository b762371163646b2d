#!/usr/bin/env python3
"""A self-signed certificate for local tries of the TLS gateway (never for production).

    python deploy/nginx/self_signed_cert.py [FOLDER] [--host NAME ...] [--days N]

writes FOLDER/tls.crt and FOLDER/tls.key (default .local/tls, git-ignored), the file names
the gateway's TLS renderings and a Kubernetes TLS Secret use. The certificate names
localhost, 127.0.0.1 and ::1 plus every --host, so a browser or `curl --cacert` can check it;
the key is an ECDSA P-256 key, readable by its owner only. Generated here, never committed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def make_certificate(names: list[str], days: int) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for `names`, valid from now for `days` days."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), False)
        # A server certificate, not a CA: clients trust exactly this one (curl --cacert).
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def write_certificate(folder: Path, names: list[str], days: int) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    cert_pem, key_pem = make_certificate(names, days)
    key_path = folder / "tls.key"
    # Created with owner-only permissions, never readable by others even for a moment.
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key_pem)
    key_path.chmod(0o600)
    cert_path = folder / "tls.crt"
    cert_path.write_bytes(cert_pem)
    return cert_path, key_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=ROOT / ".local" / "tls")
    parser.add_argument("--host", action="append", default=[], help="another name to certify")
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(argv)
    names = list(dict.fromkeys([*DEFAULT_NAMES, *args.host]))
    cert, key = write_certificate(args.folder, names, args.days)
    print(f"wrote {cert} and {key} for {', '.join(names)}, valid {args.days} days")
    return 0


if __name__ == "__main__":
    sys.exit(main())
