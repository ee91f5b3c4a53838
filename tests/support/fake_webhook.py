# SPDX-License-Identifier: MIT
"""A fake webhook receiver over real TLS, for the notification tests: it
takes what ntfy, Teams, Slack, Google Chat and a generic receiver take (a
POST to any path) and records it.

    fake_webhook.py --dir DIR --cert C --key K

Prints "PORT <n>" once listening (HTTP/1.1 with keep-alive). Every request
goes to DIR/requests.jsonl: method, path, the header fields (names in lower
case), the body as text, the status answered, the time. The answer is 200
(ntfy and Slack answer 200, Teams 202: both are 2xx) unless:
  DIR/script holds canned answers, one JSON object per line, used up one
    per request: {"status": 503}, {"status": 429, "retry_after": "1"}; with
    "path": "/x", only a request to that path uses it up;
  DIR/down exists: every request gets 503 while it does.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from https_server import serve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()

    def canned(path):
        with lock:
            if (d / "down").exists():
                return {"status": 503}
            p = d / "script"
            if not p.exists():
                return None
            lines = [l for l in p.read_text().splitlines() if l.strip()]
            for i, line in enumerate(lines):
                a = json.loads(line)
                if a.get("path", path) == path:
                    p.write_text("".join(l + "\n" for l in lines[:i] + lines[i + 1:]))
                    return a
            return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(n)
            a = canned(self.path) or {"status": 200}
            entry = {"method": "POST", "path": self.path, "status": a["status"], "time": time.time(),
                     "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": body.decode("utf-8", "replace")}
            with lock:
                with open(d / "requests.jsonl", "a") as f:
                    f.write(json.dumps(entry) + "\n")
            out = b"ok\n" if a["status"] < 300 else b"try later\n"
            self.send_response(a["status"])
            if "retry_after" in a:
                self.send_header("Retry-After", a["retry_after"])
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    serve(Handler, args.cert, args.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
