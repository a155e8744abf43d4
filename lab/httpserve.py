"""A static file server bound to 127.0.0.1 (run as a module): the lab's apt repository, and the
registry's blob store (the target of the redirecting registry's blob downloads).

python -m lab.httpserve --dir DIR --port PORT [--access-log FILE]

With ``--access-log`` every request is logged in the combined log format docker-registry writes,
with the bytes actually sent: a client that closes a download early (Dragonfly's supernode probes
a blob's length that way) shows the partial count, as in the registry's own access log.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import threading
import time
from typing import IO, Any

_log_lock = threading.Lock()


class CountingHandler(http.server.SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler that writes one combined-format line per request to ``access_log``."""

    access_log: IO[str] | None = None
    sent = 0

    def copyfile(self, source: Any, outputfile: Any) -> None:
        try:
            while chunk := source.read(64 * 1024):
                outputfile.write(chunk)
                self.sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client closed early: log what it got

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self._status = code  # written once the body is sent (handle_one_request ends)

    def handle_one_request(self) -> None:
        self.sent, self._status = 0, None
        super().handle_one_request()
        if self.access_log is None or self._status is None or not getattr(self, "requestline", ""):
            return
        status = getattr(self._status, "value", self._status)
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
        agent = self.headers.get("User-Agent", "") if self.headers else ""
        request = f'"{self.requestline}" {status} {self.sent}'
        line = f'{self.client_address[0]} - - [{stamp}] {request} "-" "{agent}"\n'
        with _log_lock:
            self.access_log.write(line)
            self.access_log.flush()

    def log_message(self, format: str, *args: Any) -> None:
        if self.access_log is None:
            super().log_message(format, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log", help="append a combined-format line per request here")
    args = parser.parse_args()
    handler_class: type[http.server.SimpleHTTPRequestHandler] = http.server.SimpleHTTPRequestHandler
    if args.access_log:
        handler_class = type("LoggedHandler", (CountingHandler,), {"access_log": open(args.access_log, "a")})  # noqa: SIM115
    handler = functools.partial(handler_class, directory=args.dir)
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
