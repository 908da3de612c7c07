"""A real SMTP server for bulletin's tests (aiosmtpd), keeping every message it accepts.

    python3 tests/servers/smtp_server.py --port 2525 --dir received [--reject ADDR]... [--flaky N]

Each accepted message is written to DIR as NNNNNN-<recipient>.eml, exactly as received.
--reject answers 550 to RCPT for that address; --flaky answers 451 to the first N DATA
commands, then accepts; --delay waits that many seconds before answering each DATA. Prints "READY" on stdout once it listens; stops on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import itertools
import os
import signal
import threading

from aiosmtpd.controller import Controller


class Keeper:
    def __init__(self, directory, reject, flaky, delay):
        self.directory = directory
        self.reject = {a.lower() for a in reject}
        self.flaky = flaky
        self.delay = delay
        self.count = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: Recipient address rejected: no such user" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.flaky > 0:
                self.flaky -= 1
                return "451 4.3.0 Temporary failure, try again later"
            n = next(self.count)
        for rcpt in envelope.rcpt_tos:
            path = os.path.join(self.directory, "%06d-%s.eml" % (n, rcpt))
            tmp = path + ".part"
            with open(tmp, "wb") as f:
                f.write(envelope.original_content or envelope.content)
            os.rename(tmp, path)
        return "250 2.0.0 OK: queued as Q%06d" % n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--reject", action="append", default=[])
    p.add_argument("--flaky", type=int, default=0)
    p.add_argument("--delay", type=float, default=0.0)
    args = p.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(
        Keeper(args.dir, args.reject, args.flaky, args.delay), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    print("READY", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
