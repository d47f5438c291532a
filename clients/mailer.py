"""Alert mail through SWAPLINE_SMTP_URL: `smtp://[user:pass@]host:port` (STARTTLS when the
server offers it) or `smtps://…` (implicit TLS). The password stays inside this object: never in
its repr, a log line or an error message."""
from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import unquote, urlsplit

TIMEOUT = 15  # seconds per SMTP conversation step


class MailError(Exception):
    """Sending failed; the message says why, without the SMTP URL or its password."""


class Mailer:
    """One SMTP server and sender address."""

    def __init__(self, smtp_url: str, mail_from: str, *, timeout: float = TIMEOUT):
        parts = urlsplit(smtp_url)
        self.implicit_tls = parts.scheme == "smtps"
        self.host = parts.hostname or ""
        self.port = parts.port or (465 if self.implicit_tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        self.mail_from = mail_from
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Mailer({'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port})"

    def send(self, to: list[str], subject: str, text: str, html: str) -> str:
        """Send one mail (plain text and HTML alternatives) to every address; its Message-ID."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.mail_from, ", ".join(to), \
            subject
        message["Message-ID"] = make_msgid(domain="swapline")
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        try:
            with self._connect() as smtp:
                if self._user:
                    smtp.login(self._user, self._password)
                smtp.send_message(message)
        except smtplib.SMTPException as exc:
            raise MailError(f"the mail server refused: {_said(exc)}") from None
        except (OSError, ssl.SSLError) as exc:
            raise MailError(f"mail server {self.host}:{self.port} unreachable: "
                            f"{type(exc).__name__}: {exc}") from None
        return message["Message-ID"]

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def _said(exc: smtplib.SMTPException) -> str:
    """The server's own words (code and text); never our credentials."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient refused: " + ", ".join(exc.recipients)
    return f"{type(exc).__name__}: {exc}"
