# SPDX-License-Identifier: MIT
"""What the fake HTTPS servers (fake_oauth.py, fake_api.py, fake_webhook.py)
share: serving a request handler over real TLS on 127.0.0.1, on a port
chosen at run time, announced as "PORT <n>" on stdout once listening."""
import ssl
from http.server import ThreadingHTTPServer


def serve(handler, cert, key):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
