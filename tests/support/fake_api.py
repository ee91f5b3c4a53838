# SPDX-License-Identifier: MIT
"""A fake Microsoft Graph and Gmail API over real TLS, for tests: the two
send calls spoolgate makes and the two reads its probe makes.

    fake_api.py --dir DIR --cert C --key K --token-file F

Prints "PORT <n>" once listening (HTTP/1.1 with keep-alive). With
--count-only (bench/run --api) it only checks the token, answers 202 and
counts; GET /count says how many.

  POST /v1.0/users/{mailbox}/sendMail             Graph, MIME: base64 text/plain body (at most 4 MiB) -> 202
  Graph's large-message path (needs the Mail.ReadWrite role in the token when the token is a JWT):
  POST /v1.0/users/{mailbox}/messages             a draft, MIME as for sendMail -> 201 {"id": ...}
  POST .../messages/{id}/attachments              a fileAttachment (JSON, contentBytes, under 3 MB) -> 201
  POST .../messages/{id}/attachments/createUploadSession
                                                  {"AttachmentItem": {...}} -> 201 {"uploadUrl": ...}
  PUT  /upload/{session}?authtoken=...            a range (Content-Range, no Authorization) -> 200, the last 201
  POST .../messages/{id}/send                     -> 202; recorded like a sendMail, with the attachments
  DELETE .../messages/{id}                        -> 204
  A draft lives in DIR/drafts/{id}.json until it is sent or deleted.
  POST /upload/gmail/v1/users/{user}/messages/send?uploadType=media
                                                   Gmail media upload, message/rfc822 -> 200 {"id": ...}
  GET  /v1.0/users/{mailbox}                       Graph user (probe) -> 200 {"mail": ...}
  GET  /gmail/v1/users/{user}/profile              Gmail profile (probe) -> 200 {"emailAddress": ...}

Every request must carry "Authorization: Bearer T" with T a token the fake
OAuth server issued (F: "<token> <unix expiry>" per line), unexpired and not
listed in F.revoked; otherwise 401 as the APIs answer. A message accepted is
decoded as the API would (base64 for Graph) and recorded in DIR/received/NNNNNN.json:
the API, the mailbox, the message bytes (base64 of them), and the recipients
the API would send to, read from its To:, Cc: and Bcc: fields with Python's
own parser (email.utils.getaddresses: independent of spoolgate's).

DIR/script holds canned answers, one JSON object per line, used up one per
send request before any normal handling (an entry with "on": "draft",
"attach", "session" or "upload" is used by that request of the large path
instead; "send" is the default and covers the draft's send):
  {"status": 429, "retry_after": "2", "code": "ApplicationThrottled", "message": "..."}
  {"hang": true}  the request is read and recorded in DIR/hung.jsonl, and no answer comes
Every request goes to DIR/requests.jsonl (path, status, time, request id,
whether the token was good, the client's port: one per connection) with the
number of requests in progress ("busy"). DIR/delay holds seconds each send
request takes before its answer.
"""
import argparse
import base64
import json
import threading
import time
import urllib.parse
import uuid
from email import message_from_bytes, policy
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from https_server import serve


def recipients_of(raw: bytes):
    msg = message_from_bytes(raw, policy=policy.compat32)
    fields = {}
    for name in ("to", "cc", "bcc"):
        values = msg.get_all(name) or []
        fields[name] = [a.lower() for _, a in getaddresses([str(v) for v in values]) if "@" in a]
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--count-only", action="store_true",
                    help="for bench/run: take every well-formed send with a good token, count it, record nothing; "
                         "GET /count says how many")
    args = ap.parse_args()
    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    in_progress = [0]
    received = [0]

    def append(name, entry):
        with lock:
            with open(d / name, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def next_scripted(kind):
        with lock:
            p = d / "script"
            if not p.exists():
                return None
            lines = [l for l in p.read_text().splitlines() if l.strip()]
            if not lines or json.loads(lines[0]).get("on", "send") != kind:
                return None
            p.write_text("".join(l + "\n" for l in lines[1:]))
            return json.loads(lines[0])

    drafts = {}
    uploads = {}

    def record_received(record):
        with lock:
            received[0] += 1
            (d / "received").mkdir(exist_ok=True)
            tmp = d / "received" / f".{received[0]:06d}.tmp"
            tmp.write_text(json.dumps(record))
            tmp.rename(d / "received" / f"{received[0]:06d}.json")

    def roles_allow(tok, role):
        """Whether the token, when it is a JWT with roles or scp, holds `role`."""
        if tok.count(".") != 2:
            return True
        try:
            claims = json.loads(base64.urlsafe_b64decode(tok.split(".")[1] + "=="))
        except Exception:
            return True
        held = list(claims.get("roles", [])) + str(claims.get("scp", "")).split()
        return not held or role in held

    def save_draft(did):
        (d / "drafts").mkdir(exist_ok=True)
        dr = drafts[did]
        (d / "drafts" / f"{did}.json").write_text(json.dumps(
            {"mailbox": dr["mailbox"], "attachments": [{k: v for k, v in a.items() if k != "bytes"}
                                                       for a in dr["attachments"]]}))

    def drop_draft(did):
        drafts.pop(did, None)
        (d / "drafts" / f"{did}.json").unlink(missing_ok=True)

    def token_ok(header):
        if not header.startswith("Bearer "):
            return False
        token = header[len("Bearer "):]
        p = Path(args.token_file)
        revoked = Path(args.token_file + ".revoked")
        gone = set(revoked.read_text().split()) if revoked.exists() else set()
        if not p.exists() or token in gone:
            return False
        for line in p.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == token and float(parts[1]) > time.time():
                return True
        return False

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, status, obj=None, headers=()):
            body = json.dumps(obj).encode() if obj is not None else b""
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if obj is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def error(self, status, code, message, extra=()):
            rid = str(uuid.uuid4())
            if self.path.startswith("/v1.0/"):
                obj = {"error": {"code": code, "message": message, "innerError": {"request-id": rid}}}
            else:
                obj = {"error": {"code": status, "message": message, "errors": [{"reason": code}]}}
            self.answer(status, obj, [("request-id", rid), *extra])
            return rid

        def handle_one(self, method):
            with lock:
                in_progress[0] += 1
                busy = in_progress[0]
            try:
                self.serve(method, busy)
            finally:
                with lock:
                    in_progress[0] -= 1

        def do_GET(self):
            self.handle_one("GET")

        def do_POST(self):
            self.handle_one("POST")

        def do_PUT(self):
            self.handle_one("PUT")

        def do_DELETE(self):
            self.handle_one("DELETE")

        def scripted_answer(self, kind, entry, body):
            """A canned answer for this request, if the script has one: True when it was given."""
            scripted = next_scripted(kind)
            if scripted and scripted.get("hang"):
                append("hung.jsonl", {**entry, "size": len(body)})
                time.sleep(3600)
                return True
            if scripted:
                entry["status"] = scripted["status"]
                append("requests.jsonl", entry)
                extra = [("Retry-After", scripted["retry_after"])] if "retry_after" in scripted else []
                self.error(scripted["status"], scripted.get("code", "Scripted"),
                           scripted.get("message", "scripted answer"), extra)
                return True
            return False

        def refuse(self, entry, status, code, message):
            entry["status"] = status
            append("requests.jsonl", entry)
            self.error(status, code, message)

        def graph_large(self, method, parts, url, entry, body):
            """Graph's draft, attachments, upload sessions and send. True when the request was one of them."""
            user = len(parts) >= 4 and parts[0] == "v1.0" and parts[1] == "users" and parts[3] == "messages"
            if method == "PUT" and len(parts) == 2 and parts[0] == "upload":
                if self.headers.get("Authorization"):
                    self.refuse(entry, 400, "InvalidRequest", "the upload URL is pre-authenticated: no Authorization")
                    return True
                if self.scripted_answer("upload", entry, body):
                    return True
                up = uploads.get(parts[1])
                if not up or urllib.parse.parse_qs(url.query).get("authtoken") != [up["authtoken"]]:
                    self.refuse(entry, 404, "ErrorItemNotFound", "no such upload session")
                    return True
                rng = self.headers.get("Content-Range", "")
                try:
                    unit, spec = rng.split(" ")
                    span, total = spec.split("/")
                    first, last = (int(x) for x in span.split("-"))
                    total = int(total)
                except ValueError:
                    self.refuse(entry, 400, "InvalidRequest", f"bad Content-Range {rng!r}")
                    return True
                if (unit != "bytes" or first != len(up["bytes"]) or last - first + 1 != len(body)
                        or total != up["size"] or len(body) > 4 * 1024 * 1024
                        or self.headers.get("Content-Type") != "application/octet-stream"):
                    self.refuse(entry, 416, "InvalidRange", f"expected bytes {len(up['bytes'])}-... of {up['size']}")
                    return True
                up["bytes"] += body
                entry["range"] = rng
                if len(up["bytes"]) < up["size"]:
                    entry["status"] = 200
                    append("requests.jsonl", entry)
                    return self.answer(200, {"nextExpectedRanges": [f"{len(up['bytes'])}-"]}) or True
                dr = drafts.get(up["draft"])
                if dr is not None:
                    dr["attachments"].append({**up["item"], "bytes": up["bytes"], "via": "upload"})
                    save_draft(up["draft"])
                del uploads[parts[1]]
                entry["status"] = 201
                append("requests.jsonl", entry)
                return self.answer(201, None, [("Location", f"{self.base()}/attachments/{uuid.uuid4()}")]) or True
            if not user:
                return False
            mailbox = parts[2]
            kind = {4: "draft", 6: parts[5] if len(parts) == 6 else "", 7: "session"}.get(len(parts), "")
            if method == "DELETE" and len(parts) == 5:
                entry["status"] = 204 if parts[4] in drafts else 404
                drop_draft(parts[4])
                append("requests.jsonl", entry)
                self.send_response(entry["status"])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            if method != "POST" or kind not in ("draft", "attachments", "send", "session"):
                return False
            if kind == "session" and parts[5:] != ["attachments", "createUploadSession"]:
                return False
            if not roles_allow(self.bearer, "Mail.ReadWrite"):
                self.refuse(entry, 403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                return True
            if self.scripted_answer({"attachments": "attach"}.get(kind, kind), entry, body):
                return True
            if kind == "draft":
                if len(body) > 4 * 1024 * 1024:
                    self.refuse(entry, 413, "RequestEntityTooLarge", "request over 4 MB")
                    return True
                try:
                    raw = base64.b64decode(body, validate=True)
                except Exception:
                    self.refuse(entry, 400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string.")
                    return True
                did = f"AAMk{uuid.uuid4().hex[:12]}="
                drafts[did] = {"mailbox": mailbox, "raw": raw, "attachments": []}
                save_draft(did)
                entry["status"] = 201
                append("requests.jsonl", entry)
                return self.answer(201, {"id": did}, [("request-id", str(uuid.uuid4()))]) or True
            did = parts[4]
            if did not in drafts or drafts[did]["mailbox"] != mailbox:
                self.refuse(entry, 404, "ErrorItemNotFound", "The specified object was not found in the store.")
                return True
            if kind == "attachments":
                j = json.loads(body)
                data = base64.b64decode(j["contentBytes"], validate=True)
                if len(body) > 4 * 1024 * 1024 or len(data) >= 3_000_000:
                    self.refuse(entry, 413, "RequestEntityTooLarge", "attachment over 3 MB: use an upload session")
                    return True
                drafts[did]["attachments"].append(
                    {"name": j["name"], "contentType": j["contentType"], "isInline": j.get("isInline", False),
                     "contentId": j.get("contentId", ""), "size": len(data), "bytes": data, "via": "post"})
                save_draft(did)
                entry["status"] = 201
                append("requests.jsonl", entry)
                return self.answer(201, {"id": str(uuid.uuid4())}) or True
            if kind == "session":
                item = json.loads(body)["AttachmentItem"]
                if item.get("attachmentType") != "file" or not 0 < int(item["size"]) <= 150 * 1024 * 1024:
                    self.refuse(entry, 400, "InvalidRequest", "bad AttachmentItem")
                    return True
                sid, tok = uuid.uuid4().hex, uuid.uuid4().hex
                uploads[sid] = {"draft": did, "size": int(item["size"]), "bytes": b"", "authtoken": tok,
                                "item": {"name": item["name"], "contentType": item.get("contentType", ""),
                                         "isInline": item.get("isInline", False),
                                         "contentId": item.get("contentId", ""), "size": int(item["size"])}}
                entry["status"] = 201
                append("requests.jsonl", entry)
                return self.answer(201, {"uploadUrl": f"{self.base()}/upload/{sid}?authtoken={tok}",
                                         "nextExpectedRanges": ["0-"]}) or True
            # send
            dr = drafts[did]
            rcpts = recipients_of(dr["raw"])
            if not (rcpts["to"] or rcpts["cc"] or rcpts["bcc"]):
                self.refuse(entry, 400, "ErrorInvalidRecipients", "At least one recipient is required.")
                return True
            rid = str(uuid.uuid4())
            entry["status"] = 202
            entry["request_id"] = rid
            append("requests.jsonl", entry)
            record_received({"api": "graph", "path": "draft", "mailbox": mailbox,
                             "message": base64.b64encode(dr["raw"]).decode(), "recipients": rcpts,
                             "attachments": [{**{k: v for k, v in a.items() if k != "bytes"},
                                              "content": base64.b64encode(a["bytes"]).decode()}
                                             for a in dr["attachments"]],
                             "time": time.time(), "request_id": rid,
                             "client_request_id": entry["client_request_id"]})
            drop_draft(did)
            self.answer(202, None, [("request-id", rid)])
            return True

        def base(self):
            return f"https://localhost:{self.server.server_address[1]}"

        def serve(self, method, busy):
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length) if length else b""
            entry = {"method": method, "path": url.path, "time": time.time(), "busy": busy,
                     "peer": self.client_address[1],
                     "content_type": self.headers.get("Content-Type", ""),
                     "client_request_id": self.headers.get("client-request-id", "")}
            if args.count_only:
                if method == "GET" and url.path == "/count":
                    with lock:
                        n = received[0]
                    return self.answer(200, {"count": n})
                if not token_ok(self.headers.get("Authorization", "")):
                    return self.error(401, "InvalidAuthenticationToken", "Access token has expired.")
                with lock:
                    received[0] += 1
                return self.answer(202, None, [("request-id", str(uuid.uuid4()))])
            if method == "PUT":
                # The upload URL carries its own authorization.
                if not self.graph_large(method, parts, url, entry, body):
                    self.refuse(entry, 404, "ResourceNotFound", "no such resource")
                return
            good = token_ok(self.headers.get("Authorization", ""))
            entry["token"] = "ok" if good else "refused"
            self.bearer = self.headers.get("Authorization", "")[len("Bearer "):]
            graph_send = method == "POST" and len(parts) == 4 and parts[0] == "v1.0" and parts[3] == "sendMail"
            gmail_send = (method == "POST" and parts[:4] == ["upload", "gmail", "v1", "users"] and len(parts) == 7
                          and parts[5:] == ["messages", "send"])
            if not good:
                entry["status"] = 401
                append("requests.jsonl", entry)
                self.error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
                return
            if self.graph_large(method, parts, url, entry, body):
                return
            if graph_send or gmail_send:
                if (d / "delay").exists():
                    time.sleep(float((d / "delay").read_text()))
                if self.scripted_answer("send", entry, body):
                    return
                if graph_send:
                    if len(body) > 4 * 1024 * 1024:
                        entry["status"] = 413
                        append("requests.jsonl", entry)
                        self.error(413, "RequestEntityTooLarge", "request over 4 MB")
                        return
                    if not entry["content_type"].startswith("text/plain"):
                        entry["status"] = 400
                        append("requests.jsonl", entry)
                        self.error(400, "ErrorInvalidRequest", "expected text/plain MIME content")
                        return
                    try:
                        raw = base64.b64decode(body, validate=True)
                    except Exception:
                        entry["status"] = 400
                        append("requests.jsonl", entry)
                        self.error(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME content.")
                        return
                    mailbox = parts[2]
                else:
                    if entry["content_type"] != "message/rfc822" or urllib.parse.parse_qs(url.query).get(
                            "uploadType") != ["media"]:
                        entry["status"] = 400
                        append("requests.jsonl", entry)
                        self.error(400, "invalidArgument", "expected a media upload of message/rfc822")
                        return
                    raw = body
                    mailbox = parts[4]
                rcpts = recipients_of(raw)
                if not (rcpts["to"] or rcpts["cc"] or rcpts["bcc"]):
                    entry["status"] = 400
                    append("requests.jsonl", entry)
                    self.error(400, "ErrorInvalidRecipients", "At least one recipient is required.")
                    return
                rid = str(uuid.uuid4())
                entry["status"] = 202 if graph_send else 200
                entry["request_id"] = rid
                append("requests.jsonl", entry)
                record = {"api": "graph" if graph_send else "gmail", "mailbox": mailbox,
                          "message": base64.b64encode(raw).decode(), "recipients": rcpts, "time": time.time(),
                          "request_id": rid, "client_request_id": entry["client_request_id"]}
                record_received(record)
                if graph_send:
                    self.answer(202, None, [("request-id", rid)])
                else:
                    self.answer(200, {"id": rid[:16], "threadId": rid[:16], "labelIds": ["SENT"]},
                                [("x-request-id", rid)])
                return
            if method == "GET" and len(parts) == 3 and parts[0] == "v1.0" and parts[1] == "users":
                entry["status"] = 200
                append("requests.jsonl", entry)
                self.answer(200, {"mail": parts[2]})
                return
            if method == "GET" and parts[:3] == ["gmail", "v1", "users"] and len(parts) == 5 and parts[4] == "profile":
                entry["status"] = 200
                append("requests.jsonl", entry)
                self.answer(200, {"emailAddress": parts[3]})
                return
            entry["status"] = 404
            append("requests.jsonl", entry)
            self.error(404, "ResourceNotFound", "no such resource")

    serve(Handler, args.cert, args.key)


if __name__ == "__main__":
    main()
