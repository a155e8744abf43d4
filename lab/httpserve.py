"""A static file server for the lab's apt repository, bound to 127.0.0.1 (run as a module).

python -m lab.httpserve --dir DIR --port PORT
"""

from __future__ import annotations

import argparse
import functools
import http.server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=args.dir)
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
