"""A real SMTP server for bulletin's tests (aiosmtpd), keeping every message it accepts.

    python3 tests/servers/smtp_server.py --port 2525 --dir received [--reject ADDR]... [--flaky N]

Each accepted message is written to DIR as NNNNNN-<recipient>.eml, exactly as received, and
each SMTP session (connection) as an empty file session-NNNNNN.
--reject answers 550 to RCPT for that address; --flaky answers 451 to the first N DATA
commands, then accepts; --flaky-code chooses the reply instead: 421 answers DATA and closes the
connection, as a relay shutting down does; 454 answers AUTH (temporary authentication failure,
needs --auth). --drop closes the connection instead of answering the first N DATA commands;
--delay waits that many seconds before answering each DATA.
--per-connection N answers 421 to MAIL FROM once N messages were accepted on a connection, and
closes it, as relays that limit messages per session do (Postfix's
smtpd_client_message_rate_limit, Exchange's "too many messages in this session").
--store-then-drop N keeps the first N messages and closes the connection without the 250
reply: the client cannot tell whether the message was stored.
--cert/--key give it a certificate: with --starttls it requires STARTTLS, with --implicit-tls
it speaks TLS from the first byte. --auth USER:PASSWORD requires AUTH (PLAIN or LOGIN), over
TLS unless there is no certificate (for a relay on this machine). Prints "READY" on stdout once
it listens; stops on SIGTERM/SIGINT.
--no-smtputf8 does not offer SMTPUTF8 (RFC 6531; aiosmtpd's enable_SMTPUTF8, which its
Controller turns on by default). Beside each message, NNNNNN-<recipient>.envelope holds what the client said: the
MAIL FROM address and its parameters on the first line, the recipient on the second, and on
the third "pipelined" when the commands after MAIL FROM had arrived with it, else "lock-step".
It offers PIPELINING (RFC 2920), as Postfix does; --no-pipelining does not (aiosmtpd never
offers it itself, and reads pipelined commands in order either way). --refuse-mail N answers
451 to the first N MAIL FROM commands (then RCPT and DATA get aiosmtpd's 503).
"""

import argparse
import asyncio
import itertools
import os
import signal
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


FLAKY_REPLIES = {
    451: "451 4.3.0 Temporary failure, try again later",
    421: "421 4.3.2 Service shutting down, closing transmission channel",
    454: "454 4.7.0 Temporary authentication failure",
}


class Keeper:
    def __init__(self, directory, reject, flaky, flaky_code, delay, drop,
                 per_connection=0, store_then_drop=0, pipelining=True, refuse_mail=0):
        self.directory = directory
        self.reject = {a.lower() for a in reject}
        self.flaky = flaky
        self.flaky_code = flaky_code
        self.delay = delay
        self.drop = drop
        self.per_connection = per_connection
        self.store_then_drop = store_then_drop
        self.pipelining = pipelining
        self.refuse_mail = refuse_mail
        self.count = itertools.count(1)
        self.sessions = itertools.count(1)
        self.counting = False
        self.lock = threading.Lock()

    def session_opened(self):
        """Records a connection (once the server is up: its own start-up check is not one)."""
        if not self.counting:
            return
        with self.lock:
            n = next(self.sessions)
        open(os.path.join(self.directory, "session-%06d" % n), "wb").close()

    def flaky_reply(self, code):
        """The reply to fail with if the next command of this kind should fail."""
        with self.lock:
            if self.flaky > 0 and self.flaky_code == code:
                self.flaky -= 1
                return FLAKY_REPLIES[code]
        return None

    def authenticate(self, user, password, auth_data):
        failure = self.flaky_reply(454)
        if failure:
            # handled=False with a message: aiosmtpd answers with that message.
            return AuthResult(success=False, handled=False, message=failure)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # Commands that came in one write with MAIL FROM are already read, waiting.
        envelope.bulletin_pipelined = len(server._reader._buffer) > 0
        with self.lock:
            refuse = self.refuse_mail > 0
            if refuse:
                self.refuse_mail -= 1
        if refuse:
            return "451 4.3.0 Sender temporarily refused, try again later"
        accepted = getattr(session, "bulletin_accepted", 0)
        if self.per_connection and accepted >= self.per_connection:
            # Closed once the reply is written.
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.7.0 Too many messages in this session, closing connection"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            drop = self.drop > 0
            if drop:
                self.drop -= 1
        if drop:
            # The connection goes away before the message is accepted.
            server.transport.close()
            return "421 4.4.2 Connection dropped"
        failure = self.flaky_reply(451)
        if failure:
            return failure
        failure = self.flaky_reply(421)
        if failure:
            # Closed once the reply is written, as a relay going down does.
            asyncio.get_running_loop().call_soon(server.transport.close)
            return failure
        with self.lock:
            n = next(self.count)
            store_then_drop = self.store_then_drop > 0
            if store_then_drop:
                self.store_then_drop -= 1
        for rcpt in envelope.rcpt_tos:
            path = os.path.join(self.directory, "%06d-%s.eml" % (n, rcpt))
            tmp = path + ".part"
            with open(tmp, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            # Written before the message appears, so that a test finding one finds both.
            with open(path[: -len(".eml")] + ".envelope", "w", encoding="utf-8") as f:
                f.write(
                    "%s %s\n%s\n%s\n"
                    % (
                        envelope.mail_from,
                        " ".join(envelope.mail_options),
                        rcpt,
                        "pipelined"
                        if getattr(envelope, "bulletin_pipelined", False)
                        else "lock-step",
                    )
                )
            os.rename(tmp, path)
        if store_then_drop:
            # Stored, and the connection goes away before the reply is written.
            server.transport.abort()
            return "250 2.0.0 OK: never seen by the client"
        session.bulletin_accepted = getattr(session, "bulletin_accepted", 0) + 1
        return "250 2.0.0 OK: queued as Q%06d" % n


class Counting(Controller):
    """A controller that tells the keeper of each connection: aiosmtpd makes one SMTP object
    per connection with factory()."""

    def factory(self):
        self.handler.session_opened()
        return super().factory()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--flaky", type=int, default=0)
    p.add_argument("--flaky-code", type=int, default=451, choices=sorted(FLAKY_REPLIES))
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--drop", type=int, default=0)
    p.add_argument("--per-connection", type=int, default=0)
    p.add_argument("--store-then-drop", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--starttls", action="store_true")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--no-smtputf8", action="store_true")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--refuse-mail", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    options = {}
    context = None
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
    if args.starttls:
        options.update(tls_context=context, require_starttls=True)
    if args.no_smtputf8:
        options.update(enable_SMTPUTF8=False)
    if args.implicit_tls:
        # aiosmtpd only counts STARTTLS as TLS when deciding to offer AUTH; here the whole
        # connection is TLS from the first byte.
        options.update(ssl_context=context, auth_require_tls=False)
    keeper = Keeper(
        args.dir, args.reject, args.flaky, args.flaky_code, args.delay, args.drop,
        args.per_connection, args.store_then_drop,
        pipelining=not args.no_pipelining, refuse_mail=args.refuse_mail,
    )
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            return keeper.authenticate(user, password, auth_data)

        options.update(authenticator=authenticator, auth_required=True)
        if not args.cert:
            # A relay on this machine may take a password without TLS (bulletin allows it
            # only for a loopback host).
            options.update(auth_require_tls=False)
    controller = Counting(
        keeper,
        hostname="127.0.0.1",
        port=args.port,
        server_hostname="localhost",
        **options
    )
    controller.start()
    keeper.counting = True
    print("READY", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
