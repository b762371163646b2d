"""The production variant of the gateway, run by the real nginx: TLS with a certificate from
configuration (here the self-signed one deploy/nginx/self_signed_cert.py makes for local
tries), HSTS on every answer, plain HTTP only redirected."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509

from tests.deploy.conftest import ROOT
from tests.support.stack import free_port


def test_the_self_signed_certificate_is_for_local_names_and_its_key_is_private(
    certificates: ModuleType, tmp_path: Path
) -> None:
    code = certificates.main([str(tmp_path / "tls"), "--host", "auth.localtest.me"])
    assert code == 0
    key = tmp_path / "tls" / "tls.key"
    assert key.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate((tmp_path / "tls" / "tls.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "auth.localtest.me"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert certificate.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=29)
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False
    assert not list(ROOT.glob("deploy/**/*.key")), "no key is ever committed"


@pytest.fixture(scope="module")
def production_gateway(
    nginx: str, certificates: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, int, Path]]:
    """The committed Kubernetes production rendering, through its start script, on free
    ports with a fresh certificate; (https port, http port, certificate)."""
    work = tmp_path_factory.mktemp("production-gateway")
    cert, _ = certificates.write_certificate(work / "tls", ["localhost", "127.0.0.1"], 1)
    (work / "resolv.conf").write_text("nameserver 127.0.0.1\nsearch ns.svc.cluster.local\n")
    filled = work / "filled.conf"
    subprocess.run(
        ["sh", str(ROOT / "deploy/k8s/base/gateway/start.sh")],
        env={
            **os.environ,
            "RESOLV_CONF": str(work / "resolv.conf"),
            "GATEWAY_TEMPLATE": str(ROOT / "deploy/k8s/overlays/production/gateway/nginx.conf"),
            "GATEWAY_CONF": str(filled),
            "GATEWAY_RENDER_ONLY": "1",
        },
        check=True,
    )
    https, http, health = free_port(), free_port(), free_port()
    text = filled.read_text()
    for old, new in {
        "listen 8443 ssl;": f"listen 127.0.0.1:{https} ssl;",
        "listen 8080;": f"listen 127.0.0.1:{http};",
        "listen 8081;": f"listen 127.0.0.1:{health};",
        "/etc/nginx/tls/": f"{work / 'tls'}/",
        "worker_processes 2;": "worker_processes 1;",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    conf = work / "nginx.conf"
    conf.write_text(text)
    log = (work / "nginx.log").open("wb")
    process = subprocess.Popen(
        [nginx, "-p", f"{work}/", "-c", str(conf), "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", https), 1):
                break
            time.sleep(0.05)
        yield https, http, cert
    finally:
        os.killpg(process.pid, signal.SIGQUIT)
        process.wait(timeout=10)
        log.close()


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": "localhost"})  # noqa: S310 (loopback only)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_: object, **__: object) -> None:
            return None

    opener = urllib.request.build_opener(
        NoRedirect, urllib.request.HTTPSHandler(context=context or ssl.create_default_context())
    )
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_https_answers_with_hsts_even_on_errors(
    production_gateway: tuple[int, int, Path],
) -> None:
    https, _, cert = production_gateway
    context = ssl.create_default_context(cafile=str(cert))
    status, headers, body = _get(f"https://localhost:{https}/nowhere", context)
    assert status == 404 and b'"not_found"' in body
    assert headers["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains"
    # A route whose service cannot be reached: the JSON 502, still with HSTS.
    status, headers, body = _get(f"https://localhost:{https}/.well-known/jwks.json", context)
    assert status == 502 and b"temporarily_unavailable" in body
    assert "Strict-Transport-Security" in headers


def test_the_certificate_is_checked_and_old_protocols_refused(
    production_gateway: tuple[int, int, Path],
) -> None:
    https, _, _ = production_gateway
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(f"https://localhost:{https}/")  # not a certificate the system trusts
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # deprecated on purpose: the client plays an old one
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
        with contextlib.suppress(ValueError):  # a local OpenSSL may not offer TLS 1.1 at all
            old.minimum_version = ssl.TLSVersion.TLSv1
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        _get(f"https://localhost:{https}/", old)


def test_plain_http_only_redirects(production_gateway: tuple[int, int, Path]) -> None:
    _, http, _ = production_gateway
    status, headers, _ = _get(f"http://127.0.0.1:{http}/oidc/register?x=1")
    assert status == 308
    assert headers["Location"] == "https://localhost/oidc/register?x=1"
