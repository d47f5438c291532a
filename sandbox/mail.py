"""The sandbox mail catcher: a real local SMTP server (aiosmtpd) that keeps every mail it
receives, for the demo (the sandbox admin lists them) and the tests."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command


@dataclass
class Mail:
    """One received mail, split into what a reader looks at."""

    sender: str
    to: list[str]
    subject: str
    text: str
    html: str
    raw: bytes = field(repr=False)
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def parse(sender: str, to: list[str], raw: bytes) -> Mail:
    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return Mail(sender, list(to), str(message["Subject"] or ""),
                text.get_content() if text else "", html.get_content() if html else "", raw)


class Mailbox:
    """What the catcher received, oldest first; safe across threads."""

    def __init__(self) -> None:
        self._mails: list[Mail] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        mail = parse(envelope.mail_from, envelope.rcpt_tos, envelope.original_content
                     or envelope.content)
        with self._lock:
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)

    def clear(self) -> None:
        with self._lock:
            self._mails.clear()


class MailCatcher:
    """The SMTP server on host:port (0: a free port), in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.mailbox = Mailbox()
        self.host = host
        self.port = port or _free_port(host)
        self._controller = Controller(self.mailbox, hostname=host, port=self.port)
        self.running = False

    @property
    def url(self) -> str:
        """What SWAPLINE_SMTP_URL is set to."""
        return f"smtp://{self.host}:{self.port}"

    def mails(self) -> list[Mail]:
        return self.mailbox.mails()

    def start(self) -> MailCatcher:
        self._controller.start()
        self.running = True
        return self

    def stop(self) -> None:
        """Stop listening (twice is fine); the mails stay readable."""
        if self.running:
            self._controller.stop()
            self.running = False


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
