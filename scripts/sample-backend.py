#!/usr/bin/env python3
"""A small backend API for the local cluster: answers every GET/POST with JSON naming itself and the
request, so you can see what the gateway forwarded. `/catalog...` answers are cacheable for 30 s. A
WebSocket handshake (any path) is accepted, and the socket echoes every message (RFC 6455, stdlib only)."""
import base64
import hashlib
import json
import struct
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sample-backend"

    def _answer(self):
        if (self.headers.get("Upgrade") or "").lower() == "websocket" and self.command == "GET":
            return self._websocket()
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

    def _websocket(self):
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self.rfile.read(8))[0]
            if length > 1 << 20:
                return
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:  # close: answered with the same code, then the connection ends
                self._frame(0x88, data[:2])
                return
            # ping gets pong; text, binary and continuation frames are echoed as they came (FIN bit kept)
            self._frame(0x8A if opcode == 9 else head[0], data)

    def _frame(self, first, payload):
        n = len(payload)
        size = bytes([n]) if n < 126 else (b"\x7e" + struct.pack("!H", n) if n < 1 << 16 else b"\x7f" + struct.pack("!Q", n))
        self.wfile.write(bytes([first]) + size + payload)
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7001
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.name = sys.argv[2] if len(sys.argv) > 2 else f"backend-{port}"
    server.serve_forever()
