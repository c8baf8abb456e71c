"""HTTPS at the gateway: --tls-cert/--tls-key serve TLS, the CLI verifies the certificate
(--cacert or LYNX_CACERT), plain HTTP to the TLS port gets no answer, and a certificate or
key the gateway cannot use stops it at start with a message naming the file and the cause.
Every certificate is a throwaway one made with openssl under the test's tmp_path."""

import http.client
import os
import re
import shutil
import ssl
import subprocess
import urllib.error

import pytest

from lynx_harness import http_request, make_tls_files, scaled, source_dir
from test_cli import QUICKSTART_BATCH, lynx, ok

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl is needed to make test certificates")


@pytest.fixture
def tls(tmp_path):
    return make_tls_files(tmp_path / "tls")


def test_cli_talks_https_with_the_ca(stack, tls, tmp_path):
    stack.start_broker()
    gateway = stack.start_gateway(tls=tls)
    assert gateway.url.startswith("https://127.0.0.1:"), gateway.url
    status, body = stack.http("GET", "/healthz")
    assert status == 200, body

    ok(lynx("runners", "--cacert", tls["ca"], url=gateway.url))
    ok(lynx("--cacert=" + str(tls["ca"]), "runners", url=gateway.url))
    ok(lynx("runners", url=gateway.url, env={"LYNX_CACERT": str(tls["ca"])}))
    # A POST with a body (a dry run of the quickstart batch) goes through TLS as well.
    ok(lynx("validate", QUICKSTART_BATCH, "--cacert", tls["ca"], url=gateway.url))

    # Without the CA the certificate is not trusted: a clear error, exit 3, and a hint.
    done = lynx("runners", url=gateway.url)
    assert done.returncode == 3, done
    assert "certificate" in done.stderr and "--cacert" in done.stderr, done.stderr
    # A CA that did not sign it is no better.
    other = make_tls_files(tmp_path / "other", name="other")
    done = lynx("runners", "--cacert", other["ca"], url=gateway.url)
    assert done.returncode == 3, done
    assert "certificate" in done.stderr, done.stderr
    # Python's verification agrees.
    with pytest.raises(urllib.error.URLError) as caught:
        http_request(gateway.url, "GET", "/healthz", cafile=other["ca"], timeout=scaled(10))
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError), caught.value
    # A --cacert file that does not exist is a usage error, before any request.
    done = lynx("runners", "--cacert", tmp_path / "nope.pem", url=gateway.url)
    assert done.returncode == 2, done
    assert "nope.pem" in done.stderr and "No such file" in done.stderr, done.stderr
    assert "WARNING" not in gateway.stderr_text(), gateway.stderr_text()


def test_certificate_names_the_host(stack, tmp_path):
    # Signed by the CA the client trusts, but for another host name: refused too.
    stack.start_broker()
    tls = make_tls_files(tmp_path / "tls", hosts=("gateway.example",))
    gateway = stack.start_gateway(tls=tls)
    done = lynx("runners", "--cacert", tls["ca"], url=gateway.url)
    assert done.returncode == 3, done
    assert "certificate" in done.stderr or "127.0.0.1" in done.stderr, done.stderr


def test_plain_http_to_the_tls_port_fails(stack, tls):
    stack.start_broker()
    gateway = stack.start_gateway(tls=tls)
    plain = gateway.url.replace("https://", "http://")
    with pytest.raises((http.client.HTTPException, ConnectionError, urllib.error.URLError)):
        http_request(plain, "GET", "/healthz", timeout=scaled(10))
    done = lynx("runners", url=plain)
    assert done.returncode == 3, done
    assert "https://" in done.stderr, done.stderr
    # The gateway lives on and still serves HTTPS.
    assert stack.http("GET", "/healthz").status == 200
    assert gateway.alive()


def test_tls_files_from_the_environment(stack, tls):
    stack.start_broker()
    gateway = stack.start_gateway(extra_env={"LYNX_GATEWAY_TLS_CERT": str(tls["cert"]),
                                             "LYNX_GATEWAY_TLS_KEY": str(tls["key"])},
                                  extra_args=("--max-body-bytes", "1048576"), tls=None,
                                  wait_ready=False)
    gateway.may_exit = False
    fields = gateway.wait_ready()
    assert fields["url"].startswith("https://127.0.0.1:"), fields
    gateway.url, gateway.cafile = fields["url"], tls["ca"]
    assert stack.http("GET", "/healthz", gateway=gateway).status == 200


def _bad_setups(tmp_path, tls):
    """(case id, extra gateway args, what stderr must say) for starts that must fail."""
    not_pem = tmp_path / "not-pem.txt"
    not_pem.write_text("hello\n")
    unreadable = tmp_path / "unreadable.key"
    shutil.copy(tls["key"], unreadable)
    os.chmod(unreadable, 0)
    other = make_tls_files(tmp_path / "other", name="other")
    missing = tmp_path / "missing.pem"
    cases = [
        ("missing_cert", ["--tls-cert", missing, "--tls-key", tls["key"]],
         [str(missing), "No such file or directory"]),
        ("missing_key", ["--tls-cert", tls["cert"], "--tls-key", missing],
         [str(missing), "No such file or directory"]),
        ("cert_not_pem", ["--tls-cert", not_pem, "--tls-key", tls["key"]],
         [str(not_pem), "not PEM"]),
        ("key_not_pem", ["--tls-cert", tls["cert"], "--tls-key", not_pem],
         [str(not_pem), "not PEM"]),
        ("key_is_the_cert", ["--tls-cert", tls["cert"], "--tls-key", tls["cert"]],
         [str(tls["cert"]), "not PEM"]),
        ("key_of_another_cert", ["--tls-cert", tls["cert"], "--tls-key", other["key"]],
         [str(tls["cert"]), str(other["key"]), "do not match"]),
        ("cert_without_key", ["--tls-cert", tls["cert"]], ["--tls-key"]),
        ("key_without_cert", ["--tls-key", tls["key"]], ["--tls-cert"]),
    ]
    if os.geteuid() != 0:  # root reads a file whatever its mode
        cases.append(("unreadable_key", ["--tls-cert", tls["cert"], "--tls-key", unreadable],
                      [str(unreadable), "Permission denied"]))
    return cases


def test_unusable_tls_files_stop_the_start(make_stack, tmp_path, tls):
    for case, args, expected in _bad_setups(tmp_path, tls):
        stack = make_stack(case)
        stack.start_broker()
        gateway = stack.start_gateway(extra_args=args, wait_ready=False)
        status = gateway.wait_exit(timeout=scaled(15))
        stderr = gateway.stderr_text()
        assert status != 0, f"{case}: exit 0\n{gateway.describe()}"
        assert not any(line.startswith("READY") for line in gateway.stdout_lines()), case
        for text in expected:
            assert text in stderr, f"{case}: {text!r} not in stderr:\n{stderr}"
        stack.stop()


def test_openssl_is_in_bootstrap():
    # The certificates above are made with openssl: a fresh machine must have it.
    packages = (source_dir() / "scripts" / "bootstrap").read_text()
    assert re.search(r"\bopenssl\b(?!-)", packages), "scripts/bootstrap does not install openssl"
