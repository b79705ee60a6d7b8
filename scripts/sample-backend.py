#!/usr/bin/env python3
"""A small backend API for the local cluster: answers every GET/POST with JSON naming itself and the
request, so you can see what the gateway forwarded. `/catalog...` answers are cacheable for 30 s."""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sample-backend"

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.dumps({
            "backend": self.server.name,
            "method": self.command,
            "path": self.path,
            "forwarded_for": self.headers.get("X-Forwarded-For"),
            "request_id": self.headers.get("X-Request-ID"),
            # The engine names an authenticated client here (API-key and JWT APIs); never the key itself.
            "client_id": self.headers.get("X-Gateway-Client-ID"),
            "body_bytes": len(body),
            "time": time.time(),
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if self.path.startswith("/catalog"):
            self.send_header("Cache-Control", "public, max-age=30")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7001
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.name = sys.argv[2] if len(sys.argv) > 2 else f"backend-{port}"
    server.serve_forever()
