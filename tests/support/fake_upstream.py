# SPDX-License-Identifier: MIT
"""A scriptable misbehaving SMTP server (raw sockets + ssl) for fault tests.

    fake_upstream.py --dir DIR --scenario NAME [--cert C --key K]

Prints "PORT <n>" once listening. DIR/events.log gets one line per command
received (with tls=yes/no), DIR/<n>.eml each message taken. Scenarios:

  ok                    STARTTLS offered and done properly, AUTH, PIPELINING (never SMTPUTF8)
  no-starttls           EHLO without STARTTLS
  starttls-454 / starttls-502
  starttls-220-no-tls   answers 220 to STARTTLS, then keeps talking plaintext
  inject                "220 ...\\r\\n250-x\\r\\n250 AUTH LOGIN\\r\\n" in one write
  caps-differ           AUTH PLAIN before TLS, only AUTH LOGIN after
  greeting-421 / greeting-554 / greeting-garbage / greeting-none
  mail-421              421 after MAIL
  drop-after-dot        first transaction: close after the final dot, no reply
  hang-ehlo / hang-mail / hang-rcpt / hang-data / hang-dot
  size-10               SIZE 10 in EHLO
  slow-data             takes message content at about 3 MB/s (TLS: a record per read)
  close-mid-body        first transaction: reads 128 KiB of the content, then closes
  login-password-first  AUTH LOGIN asks for the password first
  login-not-base64      AUTH LOGIN's challenge is not base64
  mail-530              530 5.7.57 at MAIL (Microsoft 365: client not authenticated)
  mail-5730             550 5.7.30 at MAIL (Microsoft 365: basic authentication off)
  dot-quota             554 5.2.0 ...SubmissionQuotaExceededException after the final dot
  rcpt-gmail-quota      550 5.4.5 daily sending limit at RCPT
  (with --fix-after FILE: once FILE exists, those scenarios behave as ok)
  plaintext-smtps       a plaintext 220 where TLS is expected (implicit port)
  flaky                 each connection, at random (--seed): refused, 421 greeting,
                        451 to MAIL, dropped mid-DATA, hung, or served properly
"""
import argparse
import socket
import ssl
import sys
import threading
import time
from pathlib import Path


class Conn:
    def __init__(self, sock, args, state):
        self.sock = sock
        self.args = args
        self.state = state
        self.buf = b""
        self.tls = False

    def event(self, text):
        # Binary garbage (a TLS ClientHello read as a "line") is escaped so the
        # log stays one event per line.
        if self.args.digest_only:
            return  # soak runs: millions of commands
        text = "".join(c if c.isprintable() and c.isascii() else "?" for c in text) or "?"
        with self.state["lock"]:
            f = self.state["events"]
            f.write(f"{text} tls={'yes' if self.tls else 'no'}\n")
            f.flush()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def fixed(self):
        """The operator fixed the account (--fix-after FILE exists)."""
        return bool(self.args.fix_after) and Path(self.args.fix_after).exists()

    def hang(self):
        # Until the client gives up and closes.
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        raise EOFError

    def ehlo(self):
        sc = self.args.scenario
        caps = ["250-fake.test", "250-PIPELINING", "250-8BITMIME"]
        caps.append("250-SIZE 10" if sc == "size-10" else "250-SIZE 100000000")
        if not self.tls and sc not in ("no-starttls",):
            caps.append("250-STARTTLS")
        if sc == "caps-differ":
            caps.append("250-AUTH LOGIN" if self.tls else "250-AUTH PLAIN")
        else:
            caps.append("250-AUTH PLAIN LOGIN")
        caps[-1] = caps[-1].replace("250-", "250 ", 1)
        self.send(("\r\n".join(caps) + "\r\n").encode())

    def run(self):
        sc = self.args.scenario
        if sc == "flaky":
            with self.state["lock"]:
                self.mode = self.state["rng"].choice(
                    ["refuse", "greeting-421", "mail-451", "drop-data", "hang", "ok", "ok", "ok", "ok"])
            if self.mode == "refuse":
                return
            if self.mode == "greeting-421":
                self.send(b"421 4.3.2 busy, try later\r\n")
                return
            if self.mode == "hang":
                self.hang()
        else:
            self.mode = "ok"
        if sc == "plaintext-smtps":
            self.send(b"220 fake.test ESMTP plaintext\r\n")
            self.hang()
        greetings = {"greeting-421": b"421 4.3.2 busy\r\n", "greeting-554": b"554 5.7.1 go away\r\n",
                     "greeting-garbage": b"HTTP/1.1 400 Bad Request\r\n"}
        if sc == "greeting-none":
            self.hang()
        self.send(greetings.get(sc, b"220 fake.test ESMTP\r\n"))
        if sc in greetings:
            time.sleep(0.5)
            return
        login_step = 0
        in_mail = False
        rcpts = 0
        while True:
            line = self.line()
            verb = line.split(" ")[0].upper()
            self.event(line if not line.upper().startswith("AUTH") else "AUTH " + line.split(" ")[1])
            if login_step:
                login_step = login_step + 1 if login_step < 2 else 0
                self.send(b"334 UGFzc3dvcmQ6\r\n" if login_step == 2 else b"235 2.7.0 ok\r\n")
                continue
            if verb in ("EHLO", "HELO"):
                if sc == "hang-ehlo":
                    self.hang()
                self.ehlo()
            elif verb == "STARTTLS":
                if sc == "starttls-454":
                    self.send(b"454 4.7.0 TLS not available\r\n")
                elif sc == "starttls-502":
                    self.send(b"502 5.5.1 not implemented\r\n")
                elif sc == "starttls-220-no-tls":
                    self.send(b"220 2.0.0 ready\r\n")
                elif sc == "inject":
                    self.send(b"220 2.0.0 ready\r\n250-x\r\n250 AUTH LOGIN\r\n")
                else:
                    self.send(b"220 2.0.0 ready\r\n")
                    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                    ctx.load_cert_chain(self.args.cert, self.args.key)
                    self.sock = ctx.wrap_socket(self.sock, server_side=True)
                    self.tls = True
                    self.buf = b""
            elif verb == "AUTH":
                mech = line.split(" ")[1].upper()
                if mech == "LOGIN":
                    first = {"login-password-first": b"334 UGFzc3dvcmQ6\r\n",
                             "login-not-base64": b"334 Username:\r\n"}.get(sc, b"334 VXNlcm5hbWU6\r\n")
                    self.send(first)
                    login_step = 1
                    if sc in ("login-password-first", "login-not-base64"):
                        line = self.line()
                        self.event(line)
                        self.send(b"501 5.7.0 exchange cancelled\r\n" if line == "*" else b"235 2.7.0 ok\r\n")
                        login_step = 0
                else:
                    self.send(b"235 2.7.0 ok\r\n")
            elif verb == "MAIL":
                if self.mode == "mail-451":
                    self.send(b"451 4.3.0 temporary trouble\r\n")
                    continue
                in_mail, rcpts = True, 0
                if sc == "hang-mail":
                    self.hang()
                if sc == "mail-421":
                    self.send(b"421 4.3.2 closing\r\n")
                    return
                if sc == "mail-530" and not self.fixed():
                    self.send(b"530 5.7.57 Client not authenticated to send mail. [AM0PR01CA0001]\r\n")
                    in_mail = False
                    continue
                if sc == "mail-5730" and not self.fixed():
                    self.send(b"550 5.7.30 Basic authentication is not supported for Client Submission.\r\n")
                    in_mail = False
                    continue
                self.send(b"250 2.1.0 ok\r\n")
            elif verb == "RCPT":
                if sc == "hang-rcpt":
                    self.hang()
                if not in_mail:
                    self.send(b"503 5.5.1 need MAIL\r\n")
                    continue
                if sc == "rcpt-gmail-quota" and not self.fixed():
                    self.send(b"550 5.4.5 Daily user sending limit exceeded. For more information on Gmail sending "
                              b"limits go to https://support.google.com/a/answer/166852\r\n")
                    continue
                rcpts += 1
                self.send(b"250 2.1.5 ok\r\n")
            elif verb == "DATA":
                if sc == "hang-data":
                    self.hang()
                if not rcpts:
                    self.send(b"554 5.5.1 no valid recipients\r\n")
                    continue
                in_mail = False
                self.send(b"354 go\r\n")
                if self.mode == "drop-data":
                    self.line()
                    return
                if sc == "close-mid-body":
                    with self.state["lock"]:
                        first = not self.state.get("closed_once")
                        self.state["closed_once"] = True
                    if first:
                        got = len(self.buf)
                        while got < 128 * 1024:
                            chunk = self.sock.recv(65536)
                            if not chunk:
                                raise EOFError
                            got += len(chunk)
                        self.event("CLOSE-MID-BODY")
                        return
                # Read up to the end of data in big pieces (slowly for
                # slow-data: about 3 MB/s), then unstuff.
                raw = bytearray(b"\r\n" + self.buf)
                pos = 0
                while (end := raw.find(b"\r\n.\r\n", pos)) < 0:
                    pos = max(0, len(raw) - 4)
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise EOFError
                    raw += chunk
                    if sc == "slow-data":
                        time.sleep(0.005)  # per TLS record (16 KiB)
                body, self.buf = bytes(raw[2:end + 2]), bytes(raw[end + 5:])
                content = b"".join(l[1:] if l.startswith(b".") else l for l in body.splitlines(keepends=True))
                with self.state["lock"]:
                    self.state["n"] += 1
                    n = self.state["n"]
                if self.args.digest_only:
                    # Soak runs: a line per message (its Subject token and the
                    # SHA-256 of its body) instead of a file per message.
                    import hashlib
                    import re as _re
                    tok = _re.search(rb"Subject: (\S+)\r\n", content)
                    body = content[content.find(b"\r\n\r\n") + 4:]
                    with self.state["lock"]:
                        self.state["digests"].write(
                            f"{tok.group(1).decode() if tok else '?'} {hashlib.sha256(body).hexdigest()}\n")
                        self.state["digests"].flush()
                else:
                    tmp = Path(self.args.dir) / f"{n:06d}.part"
                    tmp.write_bytes(content)
                    tmp.rename(tmp.with_suffix(".eml"))
                if not self.args.digest_only:
                    self.event(f"MESSAGE {n}")
                if sc == "hang-dot":
                    self.hang()
                if sc == "drop-after-dot" and n == 1:
                    return
                if sc == "dot-quota" and not self.fixed():
                    (Path(self.args.dir) / f"{n:06d}.eml").unlink()  # not taken
                    self.send(b"554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed "
                              b"to process message due to a permanent exception\r\n")
                    continue
                self.send(b"250 2.0.0 ok\r\n")
            elif verb == "RSET":
                in_mail, rcpts = False, 0
                self.send(b"250 2.0.0 ok\r\n")
            elif verb == "NOOP":
                self.send(b"250 2.0.0 ok\r\n")
            elif verb == "QUIT":
                self.send(b"221 2.0.0 bye\r\n")
                return
            else:
                self.send(b"500 5.5.2 what\r\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fix-after")
    ap.add_argument("--digest-only", action="store_true")
    args = ap.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    import random
    state = {"lock": threading.Lock(), "n": 0, "rng": random.Random(args.seed),
             "events": open(Path(args.dir) / "events.log", "a"),
             "digests": open(Path(args.dir) / "digests.log", "a")}
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print(f"PORT {srv.getsockname()[1]}", flush=True)

    def serve(sock):
        c = Conn(sock, args, state)
        try:
            c.run()
        except (EOFError, OSError, ssl.SSLError):
            pass
        finally:
            try:
                c.sock.close()
            except OSError:
                pass

    while True:
        s, _ = srv.accept()
        # Replies are small writes; without this, Nagle holds the second of
        # two replies until the client's delayed ACK (some 40 ms a message).
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(s,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
