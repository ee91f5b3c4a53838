# SPDX-License-Identifier: MIT
"""A real SMTP server for tests (aiosmtpd): implicit TLS, STARTTLS or plain,
AUTH PLAIN/LOGIN/XOAUTH2/OAUTHBEARER, and scripted per-recipient replies.

    smtp_sink.py --dir DIR [--tls implicit|starttls|none] [--cert C --key K]
                 [--user U --password P] [--idle-timeout SECONDS]
                 [--token-file F]

Prints "PORT <n>" on stdout once listening (port chosen by the kernel). Each
message is stored as DIR/<n>.eml (the content as received, transparency
removed) with DIR/<n>.json (envelope, authenticated user). DIR/events.log
gets one line per command that reached the server (EHLO, AUTH, MAIL, RCPT,
DATA, RSET, QUIT), so tests can assert what was never sent, plus CLOSE when a
connection ends and TIMEOUT when the sink ends an idle one (with Postfix's
"421 4.4.2 ... timeout exceeded").

A recipient whose local part contains +451 or +550 (etc.) gets that reply;
+throttle gets "451 4.7.0 Try again later" (a provider asking us to slow down).

--max-sessions N, --per-minute N and --rcpts-per-day N make it a provider
that enforces limits as Microsoft 365 does: beyond N sessions at once MAIL
gets 432 4.3.2, beyond N messages in any 60 seconds MAIL gets 451 4.7.0,
and a recipient beyond N in the run (its "day") gets 554 5.2.0
SubmissionQuotaExceeded. Each refusal is an event "REFUSED <limit>"; each
message's JSON has the time it was taken ("time").
"""
import argparse
import asyncio
import json
import re
import ssl
import sys
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, dir: Path, limits=None):
        self.dir = dir
        self.n = 0
        self.events = open(dir / "events.log", "a", buffering=1)
        self.limits = limits
        self.sessions = 0  # open now
        self.open = set()
        self.starts = []  # when each message was taken (the sliding minute)
        self.rcpts = 0  # recipients taken in the run

    def refuse(self, limit, reply):
        self.event(f"REFUSED {limit}")
        return reply

    def event(self, text):
        self.events.write(text + "\n")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        tls = server.transport.get_extra_info("ssl_object") if server.transport else None
        resumed = "yes" if tls is not None and tls.session_reused else "no"
        self.event(f"EHLO {hostname} resumed={resumed} tls={'yes' if tls is not None or session.ssl else 'no'}")
        return responses

    async def handle_RSET(self, server, session, envelope):
        self.event("RSET")
        return "250 2.0.0 OK"

    async def handle_QUIT(self, server, session, envelope):
        self.event("QUIT")
        return "221 2.0.0 Bye"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.event(f"MAIL {address} {' '.join(mail_options)}")
        lim = self.limits
        if lim and lim.max_sessions and self.sessions > lim.max_sessions:
            return self.refuse("max_sessions", "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded")
        now = time.time()
        self.starts = [t for t in self.starts if t > now - 60]
        if lim and lim.per_minute and len(self.starts) >= lim.per_minute:
            return self.refuse("per_minute", "451 4.7.0 Message rate limit exceeded, try again later")
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.event(f"RCPT {address}")
        if "+throttle@" in address:
            return "451 4.7.0 Try again later, closing connection"
        m = re.search(r"\+([45]\d\d)@", address)
        if m:
            code = m.group(1)
            return f"{code} {code[0]}.1.1 scripted reply for {address}"
        lim = self.limits
        if lim and lim.rcpts_per_day and self.rcpts >= lim.rcpts_per_day:
            return self.refuse("rcpts_per_day", "554 5.2.0 STOREDRV.Submission.Exception:"
                               "SubmissionQuotaExceededException; Failed to process message due to a permanent "
                               "exception with message Cannot submit message.")
        self.rcpts += 1
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.event(f"DATA {len(envelope.original_content)}")
        self.n += 1
        base = self.dir / f"{self.n:06d}"
        user = getattr(session, "spoolgate_user", None)
        base.with_suffix(".json").write_text(json.dumps({
            "mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
            "mail_options": envelope.mail_options, "auth_user": user, "time": time.time()}))
        self.starts.append(time.time())
        # Written under another name and renamed: readers never see half a message.
        tmp = base.with_suffix(".part")
        tmp.write_bytes(envelope.original_content)
        tmp.rename(base.with_suffix(".eml"))
        return "250 2.0.0 queued as test-%d" % self.n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--tls", default="implicit", choices=["implicit", "starttls", "none"])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--client-ca", help="require a client certificate issued by this CA")
    ap.add_argument("--idle-timeout", type=float, default=300.0, help="seconds before an idle session is ended")
    ap.add_argument("--token-file", help="XOAUTH2/OAUTHBEARER: accept the tokens listed there (fake_oauth.py's "
                                         "DIR/tokens: '<token> <unix expiry>'), unexpired and not in <file>.revoked")
    ap.add_argument("--max-sessions", type=int, default=0)
    ap.add_argument("--per-minute", type=int, default=0)
    ap.add_argument("--rcpts-per-day", type=int, default=0)
    args = ap.parse_args()
    args_ns = args
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    handler = Handler(d, args if args.max_sessions or args.per_minute or args.rcpts_per_day else None)

    ctx = None
    if args.tls != "none":
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(args.client_ca)

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and args.user is not None
              and auth_data.login.decode() == args.user and auth_data.password.decode() == args.password)
        if ok:
            session.spoolgate_user = auth_data.login.decode()
        handler.event(f"AUTH {mechanism} {auth_data.login.decode() if isinstance(auth_data, LoginPassword) else '?'} "
                      f"{'ok' if ok else 'refused'}")
        return AuthResult(success=ok, handled=False)

    class SinkSMTP(SMTP):
        """Adds XOAUTH2 (the password given to the sink is the valid token),
        a 421 before an idle timeout closes, and CLOSE events."""

        def _timeout_cb(self):
            handler.event("TIMEOUT")
            if self.transport is not None:
                self.transport.write(b"421 4.4.2 sink.test Error: timeout exceeded\r\n")
            super()._timeout_cb()

        def connection_made(self, transport):
            handler.open.add(id(self))  # (a set: STARTTLS makes the connection again)
            handler.sessions = len(handler.open)
            super().connection_made(transport)

        def connection_lost(self, error):
            handler.open.discard(id(self))
            handler.sessions = len(handler.open)
            handler.event("CLOSE")
            super().connection_lost(error)

        def token_ok(self, token):
            if not args_ns.token_file:
                return token == args_ns.password
            p = Path(args_ns.token_file)
            revoked = Path(args_ns.token_file + ".revoked")
            gone = set(revoked.read_text().split()) if revoked.exists() else set()
            for line in (p.read_text().split("\n") if p.exists() else []):
                parts = line.split()
                if len(parts) == 2 and parts[0] == token and float(parts[1]) > time.time() and token not in gone:
                    return True
            return False

        async def auth_XOAUTH2(self, _, args):
            import base64
            raw = args[1] if len(args) > 1 else ""
            try:
                fields = dict(f.split("=", 1) for f in base64.b64decode(raw).decode().split("\x01") if "=" in f)
            except Exception:
                fields = {}
            user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
            ok = args_ns.user is not None and user == args_ns.user and self.token_ok(token)
            handler.event(f"AUTH XOAUTH2 {user or '?'} {'ok' if ok else 'refused'}")
            if ok:
                self.session.spoolgate_user = user
                return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))
            # RFC-less but documented by Google: a JSON error as a challenge,
            # answered by an empty line, then 535.
            await self.challenge_auth(b'{"status":"401","schemes":"bearer"}')
            return AuthResult(success=False, handled=False)

        async def auth_OAUTHBEARER(self, _, args):
            # RFC 7628: "n,a=user,^Aauth=Bearer token^A^A"; an error is a
            # JSON challenge, answered by ^A, then 535.
            import base64
            raw = args[1] if len(args) > 1 else ""
            try:
                text = base64.b64decode(raw).decode()
                gs2, _, rest = text.partition("\x01")
                user = next((p[2:] for p in gs2.split(",") if p.startswith("a=")), "")
                user = user.replace("=2C", ",").replace("=3D", "=")
                fields = dict(f.split("=", 1) for f in rest.split("\x01") if "=" in f)
            except Exception:
                user, fields = "", {}
            token = fields.get("auth", "").removeprefix("Bearer ")
            ok = args_ns.user is not None and user == args_ns.user and self.token_ok(token)
            handler.event(f"AUTH OAUTHBEARER {user or '?'} {'ok' if ok else 'refused'}")
            if ok:
                self.session.spoolgate_user = user
                return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))
            answer = await self.challenge_auth(b'{"status":"invalid_token","scope":"smtp"}')
            if answer not in (b"\x01", b""):
                handler.event("AUTH OAUTHBEARER bad error answer")
            return AuthResult(success=False, handled=False)

    def factory():
        kw = dict(hostname="sink.test", enable_SMTPUTF8=True, data_size_limit=64 * 1024 * 1024,
                  timeout=args.idle_timeout)
        if args.user:
            kw.update(authenticator=authenticator, auth_required=True,
                      auth_require_tls=(args.tls == "starttls"))
        if args.tls == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        return SinkSMTP(handler, **kw)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(
        factory, host=args.host, port=0, ssl=ctx if args.tls == "implicit" else None))
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
