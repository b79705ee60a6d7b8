import Foundation

/// A WebSocket round trip through a proxy with real peers on both ends: Python's `websockets` library
/// (python3-websockets) as the backend, an echo server on `127.0.0.1:<backend port>`, and as the client,
/// connecting to the proxy's URL. Run with ``run(backendPort:url:apiKey:refusedURL:)``; the proxy's route
/// must send `url` to the backend port.
///
/// The client checks, and prints one line for each:
/// - `echo ok`: 50 text messages of growing size and one 1 MiB binary message come back unchanged;
/// - `whoami {json}`: the backend's view of the handshake (path, `X-Forwarded-For`, `X-Request-ID`,
///   whether it saw the API key);
/// - `concurrent ok`: 20 connections at once, 20 messages each;
/// - `client_close <code>`: the code of the close frame the client sent (1000), as the backend received it;
/// - `server_close <code> <reason>`: the backend's close frame (4000 `bye`), as the client received it;
/// - `refused <status>`: the handshake answer for `refusedURL` (a route that refuses the client);
/// - `ok` last, when every check passed.
public enum WebSocketCheck {
    public static let available = systemPythonHas(module: "websockets")

    public static func run(
        backendPort: Int, url: String, apiKey: String = "", refusedURL: String = ""
    ) async throws -> (status: Int32, output: String) {
        try await runTool("/usr/bin/python3", ["-c", script, String(backendPort), url, apiKey, refusedURL], timeout: .seconds(60))
    }

    static let script = #"""
        import asyncio, json, os, sys, time
        import websockets

        backend_port, url, key, refused_url = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
        closes = []

        async def handler(ws, path=None):
            try:
                async for message in ws:
                    if message == "whoami":
                        h = ws.request_headers
                        await ws.send(json.dumps({"path": ws.path, "xff": h.get("X-Forwarded-For"),
                                                  "request_id": h.get("X-Request-ID"), "saw_key": "X-API-Key" in h}))
                    elif message == "bye":
                        await ws.close(4000, "bye")
                    else:
                        await ws.send(message)
            except websockets.ConnectionClosed:
                pass
            finally:
                closes.append(ws.close_code)

        async def until(condition, seconds=10):
            deadline = time.monotonic() + seconds
            while not condition():
                if time.monotonic() > deadline:
                    raise AssertionError("timed out")
                await asyncio.sleep(0.02)

        def connect(u=None):
            headers = [("X-API-Key", key)] if key else []
            return websockets.connect(u or url, extra_headers=headers, max_size=4 << 20, open_timeout=10, close_timeout=10)

        async def conversation(ws, n, tag):
            for i in range(n):
                m = f"{tag} {i} " + "x" * (i * 37)
                await ws.send(m)
                got = await ws.recv()
                assert got == m, (got[:80], m[:80])

        async def main():
            server = await websockets.serve(handler, "127.0.0.1", backend_port, max_size=4 << 20)
            async with connect() as ws:
                await conversation(ws, 50, "message")
                big = os.urandom(1 << 20)
                await ws.send(big)
                assert await ws.recv() == big
                print("echo ok", flush=True)
                await ws.send("whoami")
                print("whoami " + await ws.recv(), flush=True)
            await until(lambda: len(closes) >= 1)
            print(f"client_close {closes[0]}", flush=True)

            async def one(i):
                async with connect() as ws:
                    await conversation(ws, 20, f"c{i}")
            await asyncio.gather(*(one(i) for i in range(20)))
            print("concurrent ok", flush=True)

            async with connect() as ws:
                await ws.send("bye")
                try:
                    await ws.recv()
                    raise AssertionError("no close")
                except websockets.ConnectionClosed as e:
                    frame = e.rcvd
                    print(f"server_close {frame.code if frame else None} {frame.reason if frame else None}", flush=True)

            if refused_url:
                try:
                    async with websockets.connect(refused_url, open_timeout=10):
                        raise AssertionError("handshake accepted")
                except websockets.exceptions.InvalidStatusCode as e:
                    print(f"refused {e.status_code}", flush=True)
            server.close()
            await server.wait_closed()
            print("ok", flush=True)

        asyncio.run(main())
        """#
}
