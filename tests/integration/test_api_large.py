# SPDX-License-Identifier: MIT
"""Graph's large-message path (issue 17): a message over the 3,000,000
bytes one sendMail request carries goes as a draft without its largest
attachments, each attachment added (a POST under 3 MB, an upload session
in ranges above), then the draft sent. The fake Graph
(tests/support/fake_api.py) keeps the draft and the uploads as Graph does
and records what it sends with the attachments decoded."""
import base64
import os
from email import message_from_bytes, policy

from conftest import send, wait_for
from test_api import MAILBOX, capture_spooled, make_api, queued


def b64_lines(data):
    s = base64.b64encode(data)
    return b"".join(s[i:i + 76] + b"\r\n" for i in range(0, len(s), 76))


def part(headers, data):
    return b"--MIXED\r\n" + headers + b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(data)


def scan_message(pdf, img1, img2):
    text = (b"--MIXED\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nScanned pages attached.\r\n")
    parts = [part(b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"scan.pdf\"\r\n", pdf),
             part(b"Content-Type: image/png; name=\"page1.png\"\r\n", img1),
             part(b"Content-Type: image/png; name=\"page2.png\"\r\n", img2)]
    head = (b"From: scanner@lan\r\nTo: ops@example.com\r\nSubject: scan\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"MIXED\"\r\n\r\n")
    return head + text + b"".join(parts) + b"--MIXED--\r\n", parts


def drafts_left(api):
    p = api.dir / "drafts"
    return sorted(x.name for x in p.glob("*.json")) if p.exists() else []


def test_a_large_message_goes_as_a_draft_with_its_attachments_uploaded(daemon_factory, token_server_factory,
                                                                        api_server_factory, pki, workdir):
    """10.6 MB of scan: the 5 MB PDF goes through an upload session (two
    ranges), one 1.5 MB page as a POSTed file, the other stays in the draft,
    which is the spooled message without the two parts byte for byte. The
    first attempt fails at the upload (503): its draft is deleted and the
    retry sends the message once; every file arrives intact, with its name
    and type, to the envelope's recipient."""
    pdf, img1, img2 = os.urandom(5_000_000), os.urandom(1_500_000), os.urandom(1_400_000)
    msg, parts = scan_message(pdf, img1, img2)
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir)
    api.script({"on": "upload", "status": 503, "code": "ServiceUnavailable"})
    send(d, rcpts=["ops@example.com"], body=msg)
    spooled = capture_spooled(d, api)
    [got] = api.wait_received(1, timeout=60)
    assert got["path"] == "draft" and got["mailbox"] == MAILBOX
    assert got["recipients"]["to"] == ["ops@example.com"]
    files = {a["name"]: a for a in got["attachments"]}
    assert sorted(files) == ["page1.png", "scan.pdf"]
    assert base64.b64decode(files["scan.pdf"]["content"]) == pdf and files["scan.pdf"]["via"] == "upload"
    assert files["scan.pdf"]["contentType"] == "application/pdf"
    assert base64.b64decode(files["page1.png"]["content"]) == img1 and files["page1.png"]["via"] == "post"
    # The draft: the spooled message without the two parts, byte for byte.
    assert got["raw"] == spooled.replace(parts[0], b"").replace(parts[1], b"")
    parsed = message_from_bytes(got["raw"], policy=policy.default)
    bodies = [p.get_payload(decode=True) for p in parsed.walk() if not p.is_multipart()]
    assert bodies == [b"Scanned pages attached.", img2]
    # The order of requests: the failed attempt and its draft deleted, then the whole path once.
    steps = [(r["method"], r["path"].rsplit("/", 1)[-1], r["status"]) for r in api.requests()
             if r["path"].startswith(("/v1.0", "/upload"))]
    first_put = next(i for i, s in enumerate(steps) if s[0] == "PUT")
    assert steps[first_put][2] == 503
    assert ("DELETE", steps[first_put + 1][1], 204) == steps[first_put + 1], steps
    after = [(m, s) for m, _, s in steps[first_put + 2:]]
    assert after == [("POST", 201), ("POST", 201), ("PUT", 200), ("PUT", 201), ("POST", 201), ("POST", 202)], steps
    assert "event=api_large_message" in d.log()
    wait_for(lambda: not queued(d), what="the message removed after the send")
    assert drafts_left(api) == []
    d.stop()


def test_a_message_graph_cannot_take_apart_fails_for_good_with_the_reason(daemon_factory, token_server_factory,
                                                                          api_server_factory, pki, workdir):
    """3.2 MB of plain text has no attachment to take out: nothing is sent,
    the message fails at once and the sender's report says why."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir)
    line = b"x" * 998 + b"\r\n"
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: long text\r\n\r\n" + line * 3200)
    [report] = api.wait_received(1)
    assert report["recipients"]["to"] == ["dev@lan"]
    assert b"too large for Microsoft Graph" in report["raw"], report["raw"][:3000]
    assert not any(r["path"].endswith("/messages") for r in api.requests())
    wait_for(lambda: not queued(d), what="the message gone from the queue")
    d.stop()


def test_kill_9_during_an_upload_sends_the_message_once_after_the_restart(daemon_factory, token_server_factory,
                                                                          api_server_factory, pki, workdir):
    """The daemon dies while a range is at Graph: after the restart the
    message goes again from a new draft, once. The draft of the killed
    attempt stays in the mailbox's Drafts (nothing is left to delete it)."""
    pdf = os.urandom(4_000_000)
    msg, _ = scan_message(pdf, b"1", b"2")
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir)
    api.script({"on": "upload", "hang": True})
    send(d, rcpts=["ops@example.com"], body=msg)
    wait_for(lambda: api.hung(), timeout=30, what="a range at the API")
    d.kill9()
    d.start()
    [got] = api.wait_received(1, timeout=60)
    assert base64.b64decode(got["attachments"][0]["content"]) == pdf
    wait_for(lambda: not queued(d), what="an empty queue after the restart")
    assert len(drafts_left(api)) == 1
    d.stop()
