# SPDX-License-Identifier: MIT
"""A fake OAuth2 authorization server over real TLS, for tests: the token
endpoint (RFC 6749: client_credentials and refresh_token grants, with
refresh tokens rotated on every use, as Microsoft and many providers do)
and the device authorization endpoint (RFC 8628: /devicecode, then the
device_code grant at /token, pending until DIR/approved holds the code).

    fake_oauth.py --dir DIR --cert C --key K [--lifetime SECONDS]
                  [--client-id ID --client-secret S]

Prints "PORT <n>" once listening. Each access token issued goes into
DIR/tokens ("<token> <unix expiry>" per line), which the SMTP sink reads to
accept or refuse XOAUTH2/OAUTHBEARER logins. DIR/refresh holds the one
valid refresh token (write it to "sign in"; a used one is replaced and
dies at once). DIR/mode switches behaviour: "ok" (default), "down" (503),
"invalid_grant" (400: consent revoked), "slow" (answers after 3 s).
DIR/requests.log gets one JSON line per request (grant, outcome).
"""
import argparse
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--lifetime", type=int, default=3600)
    ap.add_argument("--client-id", default="app-1")
    ap.add_argument("--client-secret", default="client-s3cret")
    ap.add_argument("--client-cert", help="also accept client assertions (RFC 7523, RS256) signed for this "
                                          "certificate, as Microsoft's certificate credentials")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    counter = [0]
    seen_jti = set()

    def assertion_problem(form, audience):
        """None when the client assertion is good, else what is wrong with it."""
        import base64
        import hashlib
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        def unurl(part):
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        if not args.client_cert:
            return "no certificate registered"
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "client_assertion_type"
        try:
            h, c, sig = form.get("client_assertion", "").split(".")
            header, claims = json.loads(unurl(h)), json.loads(unurl(c))
            cert = x509.load_pem_x509_certificate(Path(args.client_cert).read_bytes())
            cert.public_key().verify(unurl(sig), f"{h}.{c}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception as e:
            return f"malformed or bad signature: {e!r}"
        thumb = base64.urlsafe_b64encode(
            hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()).rstrip(b"=").decode()
        now = time.time()
        if header.get("alg") != "RS256" or header.get("x5t#S256") != thumb:
            return "header"
        if claims.get("aud") != audience or claims.get("iss") != args.client_id or claims.get("sub") != args.client_id:
            return "claims"
        if not (claims.get("nbf", 0) <= now + 60 < claims.get("exp", 0) + 60) or claims.get("exp", 0) - now > 3600:
            return "times"
        if claims.get("jti") in seen_jti:
            return "jti replayed"
        seen_jti.add(claims.get("jti"))
        return None

    def log(entry):
        with open(d / "requests.log", "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, obj):
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            mode = (d / "mode").read_text().strip() if (d / "mode").exists() else "ok"
            grant = form.get("grant_type", "")
            entry = {"path": self.path, "grant": grant, "mode": mode, "time": time.time(),
                     "content_type": self.headers.get("Content-Type", "")}
            if mode == "slow":
                time.sleep(3)
            if self.path == "/devicecode" and mode != "down":
                # RFC 8628 3.2. The test "signs in" by writing the device
                # code to DIR/approved.
                with lock:
                    counter[0] += 1
                    code = f"dc-{counter[0]}"
                log({**entry, "outcome": "device_code"})
                return self.answer(200, {"device_code": code, "user_code": f"USER-{counter[0]}",
                                         "verification_uri": "https://localhost/devicelogin", "expires_in": 300,
                                         "interval": 1})
            if self.path != "/token":
                log({**entry, "outcome": "404"})
                return self.answer(404, {"error": "not_found"})
            if mode == "down":
                log({**entry, "outcome": "503"})
                return self.answer(503, {"error": "temporarily_unavailable"})
            if form.get("client_id") != args.client_id:
                log({**entry, "outcome": "invalid_client"})
                return self.answer(401, {"error": "invalid_client", "error_description": "unknown client"})
            with lock:
                if grant == "client_credentials" and "client_assertion" in form:
                    why = assertion_problem(form, f"https://localhost:{self.server.server_address[1]}/token")
                    if why:
                        log({**entry, "outcome": "invalid_client", "why": why})
                        return self.answer(401, {"error": "invalid_client", "error_description": why})
                    entry["assertion"] = True
                    new_refresh = None
                elif grant == "client_credentials":
                    if form.get("client_secret") != args.client_secret:
                        log({**entry, "outcome": "invalid_client"})
                        return self.answer(401, {"error": "invalid_client", "error_description": "bad secret"})
                    new_refresh = None
                elif grant == "refresh_token":
                    current = (d / "refresh").read_text().strip() if (d / "refresh").exists() else ""
                    if mode == "invalid_grant" or not current or form.get("refresh_token") != current:
                        log({**entry, "outcome": "invalid_grant"})
                        return self.answer(400, {"error": "invalid_grant",
                                                 "error_description": "AADSTS70008: the refresh token has expired"})
                    counter[0] += 1
                    new_refresh = f"rt-{counter[0]}-{time.time_ns()}"
                    (d / "refresh").write_text(new_refresh + "\n")
                elif grant == "urn:ietf:params:oauth:grant-type:device_code":
                    approved = (d / "approved").read_text().strip() if (d / "approved").exists() else ""
                    if form.get("device_code") != approved:
                        log({**entry, "outcome": "authorization_pending"})
                        return self.answer(400, {"error": "authorization_pending"})
                    counter[0] += 1
                    new_refresh = f"rt-{counter[0]}-{time.time_ns()}"
                    (d / "refresh").write_text(new_refresh + "\n")
                else:
                    log({**entry, "outcome": "unsupported_grant_type"})
                    return self.answer(400, {"error": "unsupported_grant_type"})
                counter[0] += 1
                token = f"at-{counter[0]}-{time.time_ns()}"
                with open(d / "tokens", "a") as f:
                    f.write(f"{token} {time.time() + args.lifetime}\n")
            out = {"token_type": "Bearer", "access_token": token, "expires_in": args.lifetime}
            if new_refresh:
                out["refresh_token"] = new_refresh
            log({**entry, "outcome": "ok", "rotated": bool(new_refresh)})
            self.answer(200, out)

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
