# SPDX-License-Identifier: MIT
"""A fake OAuth2 authorization server over real TLS, for tests: the token
endpoint (RFC 6749: client_credentials and refresh_token grants, with
refresh tokens rotated on every use, as Microsoft and many providers do)
and the device authorization endpoint (RFC 8628: /devicecode, then the
device_code grant at /token, pending until DIR/approved holds the code)
and the authorization endpoint for a browser (RFC 6749 4.1 with PKCE, RFC
7636: GET /authorize checks the request, as Google does for a loopback
client, and redirects to redirect_uri with a one-use code; the
authorization_code grant at /token checks the code, the redirect_uri and
the code_verifier against the S256 challenge).

    fake_oauth.py --dir DIR --cert C --key K [--lifetime SECONDS]
                  [--client-id ID --client-secret S]

Prints "PORT <n>" once listening. Each access token issued goes into
DIR/tokens ("<token> <unix expiry>" per line), which the SMTP sink reads to
accept or refuse XOAUTH2/OAUTHBEARER logins. DIR/refresh holds the one
valid refresh token (write it to "sign in"; a used one is replaced and
dies at once, unless DIR/rotation says "keep": then, as Microsoft's
identity platform does, a used one stays valid too and is listed in
DIR/refresh.old). DIR/kill_on_rotation may hold a pid: the next refresh
that rotates the refresh token sends that process SIGKILL after the new
token is made and before the answer leaves (the file is then removed, the
request logged with "killed"). DIR/mode switches behaviour: "ok" (default), "down" (503),
"invalid_grant" (400: consent revoked), "slow" (answers after 3 s),
"deny" (/authorize: the person refuses consent, error=access_denied).
DIR/roles, when present, makes each access token a JWT (as Microsoft's are)
whose payload claims those application permissions ("Mail.Send").
DIR/requests.log gets one JSON line per request (grant, outcome).
"""
import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from https_server import serve


def jwt_part(obj):
    """One base64url part of a JWT (RFC 7515), without padding."""
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


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
    ap.add_argument("--service-account", help="also take the JWT-bearer grant (RFC 7523 2.1) from this Google "
                                              "service account (its email), signed for --client-cert's key")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    counter = [0]
    seen_jti = set()
    codes = {}  # authorization code -> (code_challenge, redirect_uri)

    def verified_jwt(jwt):
        """(header, claims, cert) of an RS256 JWT signed for --client-cert's key; raises when it is not one."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def unurl(part):
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        h, c, sig = jwt.split(".")
        header, claims = json.loads(unurl(h)), json.loads(unurl(c))
        cert = x509.load_pem_x509_certificate(Path(args.client_cert).read_bytes())
        cert.public_key().verify(unurl(sig), f"{h}.{c}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return header, claims, cert

    def assertion_problem(form, audience):
        """None when the client assertion is good, else what is wrong with it."""
        import hashlib
        from cryptography.hazmat.primitives import serialization

        if not args.client_cert:
            return "no certificate registered"
        if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            return "client_assertion_type"
        try:
            header, claims, cert = verified_jwt(form.get("client_assertion", ""))
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

    def grant_problem(form, audience):
        """(None, claims) when a service account's JWT-bearer grant is good, else (what is wrong, None)."""
        if not (args.client_cert and args.service_account):
            return "no service account registered", None
        try:
            header, claims, _ = verified_jwt(form.get("assertion", ""))
        except Exception as e:
            return f"malformed or bad signature: {e!r}", None
        now = time.time()
        if header.get("alg") != "RS256" or not header.get("kid"):
            return "header", None
        if claims.get("iss") != args.service_account or claims.get("aud") != audience:
            return "iss or aud", None
        if not claims.get("scope") or "@" not in str(claims.get("sub", "")):
            return "scope or sub", None
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat <= now + 60 and now < exp and exp - iat <= 3600):
            return "times", None
        return None, claims

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

        def do_GET(self):
            import secrets
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query))
            mode = (d / "mode").read_text().strip() if (d / "mode").exists() else "ok"
            entry = {"path": url.path, "mode": mode, "time": time.time(),
                     "query": {k: v for k, v in q.items() if k not in ("state", "code_challenge")}}
            if url.path != "/authorize":
                log({**entry, "outcome": "404"})
                return self.answer(404, {"error": "not_found"})
            redirect = q.get("redirect_uri", "")
            # RFC 8252 7.3: a loopback IP literal, any port; RFC 7636: S256.
            problem = ("response_type" if q.get("response_type") != "code" else
                       "client_id" if q.get("client_id") != args.client_id else
                       "redirect_uri" if not redirect.startswith("http://127.0.0.1:") else
                       "code_challenge_method" if q.get("code_challenge_method") != "S256" else
                       "code_challenge" if len(q.get("code_challenge", "")) != 43 else
                       "state" if not q.get("state") else None)
            if problem:
                log({**entry, "outcome": "invalid_request", "why": problem})
                return self.answer(400, {"error": "invalid_request", "error_description": problem})
            if mode == "deny":
                answer = {"error": "access_denied", "error_description": "the user said no", "state": q["state"]}
            else:
                code = "ac-" + secrets.token_urlsafe(12)
                with lock:
                    offline = q.get("access_type") == "offline" or "offline_access" in q.get("scope", "").split()
                    codes[code] = (q["code_challenge"], redirect, offline)
                answer = {"code": code, "state": q["state"], "scope": q.get("scope", "")}
            log({**entry, "outcome": "redirect"})
            self.send_response(302)
            self.send_header("Location", redirect + "?" + urllib.parse.urlencode(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

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
            jwt_grant = grant == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            if not jwt_grant and form.get("client_id") != args.client_id:
                log({**entry, "outcome": "invalid_client"})
                return self.answer(401, {"error": "invalid_client", "error_description": "unknown client"})
            with lock:
                if jwt_grant:
                    why, claims = grant_problem(form, f"https://localhost:{self.server.server_address[1]}/token")
                    if why:
                        log({**entry, "outcome": "invalid_grant", "why": why})
                        return self.answer(400, {"error": "invalid_grant", "error_description": why})
                    entry.update(sub=claims["sub"], scope=claims["scope"], client_id=form.get("client_id"))
                    new_refresh = None
                elif grant == "client_credentials" and "client_assertion" in form:
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
                    keep = (d / "rotation").exists() and (d / "rotation").read_text().strip() == "keep"
                    old = (d / "refresh.old").read_text().split() if keep and (d / "refresh.old").exists() else []
                    presented = form.get("refresh_token")
                    if mode == "invalid_grant" or not current or (presented != current and presented not in old):
                        log({**entry, "outcome": "invalid_grant"})
                        return self.answer(400, {"error": "invalid_grant",
                                                 "error_description": "AADSTS70008: the refresh token has expired"})
                    entry["presented"] = "current" if presented == current else "old"
                    counter[0] += 1
                    new_refresh = f"rt-{counter[0]}-{time.time_ns()}"
                    if keep:
                        with open(d / "refresh.old", "a") as f:
                            f.write(current + "\n")
                    (d / "refresh").write_text(new_refresh + "\n")
                    victim = d / "kill_on_rotation"
                    if victim.exists():
                        pid = int(victim.read_text())
                        victim.unlink()
                        os.kill(pid, signal.SIGKILL)
                        entry["killed"] = pid
                elif grant == "urn:ietf:params:oauth:grant-type:device_code":
                    approved = (d / "approved").read_text().strip() if (d / "approved").exists() else ""
                    if form.get("device_code") != approved:
                        log({**entry, "outcome": "authorization_pending"})
                        return self.answer(400, {"error": "authorization_pending"})
                    counter[0] += 1
                    new_refresh = f"rt-{counter[0]}-{time.time_ns()}"
                    (d / "refresh").write_text(new_refresh + "\n")
                elif grant == "authorization_code":
                    import base64
                    import hashlib
                    challenge, redirect, offline = codes.pop(form.get("code", ""), (None, None, False))
                    verifier = form.get("code_verifier", "")
                    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
                    why = ("unknown or used code" if challenge is None else
                           "redirect_uri" if form.get("redirect_uri") != redirect else
                           "code_verifier" if computed.decode() != challenge or not 43 <= len(verifier) <= 128 else
                           "client_secret" if form.get("client_secret", args.client_secret) != args.client_secret
                           else None)
                    if why:
                        log({**entry, "outcome": "invalid_grant", "why": why})
                        return self.answer(400, {"error": "invalid_grant", "error_description": why})
                    new_refresh = None
                    if offline:  # a refresh token only for offline access (Google, Microsoft)
                        counter[0] += 1
                        new_refresh = f"rt-{counter[0]}-{time.time_ns()}"
                        (d / "refresh").write_text(new_refresh + "\n")
                else:
                    log({**entry, "outcome": "unsupported_grant_type"})
                    return self.answer(400, {"error": "unsupported_grant_type"})
                counter[0] += 1
                token = f"at-{counter[0]}-{time.time_ns()}"
                if (d / "roles").exists():
                    # Shaped as Microsoft's: a JWT whose payload claims the
                    # application permissions listed in DIR/roles.
                    token = (jwt_part({"alg": "RS256", "typ": "JWT"}) + "." +
                             jwt_part({"roles": (d / "roles").read_text().split(), "jti": token}) + ".fake-signature")
                with open(d / "tokens", "a") as f:
                    f.write(f"{token} {time.time() + args.lifetime}\n")
            out = {"token_type": "Bearer", "access_token": token, "expires_in": args.lifetime}
            if new_refresh:
                out["refresh_token"] = new_refresh
            log({**entry, "outcome": "ok", "rotated": bool(new_refresh)})
            self.answer(200, out)

    serve(Handler, args.cert, args.key)


if __name__ == "__main__":
    sys.exit(main())
