"""clients/mailer.py against real aiosmtpd servers: STARTTLS when offered (required here),
implicit TLS for smtps://, login only over TLS, and a certificate that is not trusted."""
from __future__ import annotations

import socket
import ssl

import pytest
from aiosmtpd.controller import Controller

from clients.mailer import Mailer, MailError
from sandbox.mail import Mailbox
from tests.tls import self_signed

PASSWORD = "s3cret-smtp-pass"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, trusted through SSL_CERT_FILE."""
    return self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1")


def _server_context(cert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert / "cert.pem", cert / "key.pem")
    return context


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=auth_data.login == b"alerts" and
                      auth_data.password == PASSWORD.encode())


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "smtps"])
def test_mail_over_tls_with_login(cert, monkeypatch, implicit):
    monkeypatch.setenv("SSL_CERT_FILE", str(cert / "cert.pem"))
    mailbox, port = Mailbox(), _port()
    # aiosmtpd's auth_require_tls knows STARTTLS only; with implicit TLS all of it is TLS.
    tls = {"ssl_context": _server_context(cert), "auth_require_tls": False} if implicit else \
        {"tls_context": _server_context(cert), "require_starttls": True, "auth_require_tls": True}
    server = Controller(mailbox, hostname="127.0.0.1", port=port, authenticator=_authenticator,
                        **tls)
    server.start()
    try:
        scheme = "smtps" if implicit else "smtp"
        mailer = Mailer(f"{scheme}://alerts:{PASSWORD}@127.0.0.1:{port}", "Swapline <a@b.se>")
        assert PASSWORD not in repr(mailer)
        mailer.send(["ops@shop.se"], "#1001: Needs attention", "plain body", "<p>html body</p>")
        [mail] = mailbox.mails()
        assert mail.subject == "#1001: Needs attention" and mail.to == ["ops@shop.se"]
        assert mail.text.strip() == "plain body" and "<p>html body</p>" in mail.html
    finally:
        server.stop()


def test_an_untrusted_certificate_is_refused(cert):
    mailbox, port = Mailbox(), _port()
    server = Controller(mailbox, hostname="127.0.0.1", port=port,
                        tls_context=_server_context(cert), require_starttls=True)
    server.start()
    try:
        with pytest.raises(MailError) as refused:
            Mailer(f"smtp://127.0.0.1:{port}", "a@b.se").send(["x@y.se"], "s", "t", "h")
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value) and mailbox.mails() == []
    finally:
        server.stop()
