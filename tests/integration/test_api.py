# SPDX-License-Identifier: MIT
"""API upstreams (issue 17): mail goes out through Microsoft Graph's
sendMail or Gmail's messages.send instead of SMTP, behind the same spool,
with tokens from a token endpoint over real TLS. The APIs are faked over
real TLS (tests/support/fake_api.py): they take only the tokens the fake
token endpoint issued, decode what they receive and read its recipients
with Python's own parser."""
import json
import re
import smtplib
import subprocess
from pathlib import Path

from conftest import (BIN, CLIENT_SECRET, PASSWORD, USER, daemon_upstream_settings, send, send_raw, upstream_config,
                      wait_for)

MAILBOX = "relay@contoso.example"


def api_upstream(kind, api, ts, pki, workdir, **extra):
    secret = workdir / "client-secret"
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    u = {"name": kind, "url": f"graph://{MAILBOX}" if kind == "graph" else "gmail-api://me",
         "api_base": api.base, "ca_file": pki.ca_file,
         "oauth": {"provider": "custom", "grant": "client_credentials", "client_id": "app-1", "token_url": ts.url,
                   "scope": "https://graph.microsoft.com/.default", "client_secret_file": str(secret),
                   "ca_file": pki.ca_file}}
    u.update(extra)
    return u


def make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir, kind="graph", start=True,
             **settings):
    ts = token_server_factory()
    api = api_server_factory(ts)
    d = daemon_factory(daemon_upstream_settings([api_upstream(kind, api, ts, pki, workdir)], **settings),
                       start=start)
    return d, api, ts


def queued(d):
    out = subprocess.run([BIN, "queue", "list", "--json", "-c", str(d.config)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def body_of(size):
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ!#$%&()*+,-./:;<=>?@[]^_{|}~ " * 10
    unit = line[:998] + b"\r\n"
    return unit * -(-size // len(unit))  # whole lines, at least size bytes


def capture_spooled(d, api):
    """The message's bytes as spooled: the API first answers 503 (row 4,
    throttled, no Retry-After), so it waits in the queue to be read."""
    wait_for(lambda: any(r["status"] == 503 for r in api.requests()), what="the first, refused attempt")
    wait_for(lambda: queued(d), what="the message queued")
    return d.content(queued(d)[0]["id"])


def test_graph_sends_each_message_byte_for_byte_with_a_token_of_its_own(daemon_factory, token_server_factory,
                                                                        api_server_factory, pki, workdir):
    """Graph's MIME sendMail: the message as spooled (our Received: on top),
    base64 as text/plain, to the configured mailbox, with a token the
    endpoint issued; a 503 before it only defers; the API's request id in
    the attempt's log line."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir)
    api.script({"status": 503, "code": "ServiceUnavailable"})
    body = b"From: scanner@lan\r\nTo: ops@example.com\r\nSubject: scan\r\n\r\n" + body_of(2_500_000)
    send(d, rcpts=["ops@example.com"], body=body)
    spooled = capture_spooled(d, api)
    got = api.wait_received(1)[0]
    assert got["api"] == "graph" and got["mailbox"] == MAILBOX
    assert got["raw"] == spooled, "the message changed on the way"
    assert got["raw"].endswith(body[body.index(b"\r\n\r\n"):])
    assert got["recipients"] == {"to": ["ops@example.com"], "cc": [], "bcc": []}
    assert got["client_request_id"].endswith(queued_id_in(d.log()))
    assert f"request_id={got['request_id']}" in d.log()
    assert all(r["token"] == "ok" for r in api.requests())
    wait_for(lambda: not queued(d), what="the message removed after the 202")
    assert "event=delivered" in d.log()
    d.stop()


def queued_id_in(log):
    m = re.search(r"event=api_answer session=\S+ msg=([0-9A-Z]{16})", log)
    assert m, log
    return m.group(1)


def test_gmail_media_upload_of_a_large_message(daemon_factory, token_server_factory, api_server_factory, pki,
                                               workdir):
    """Gmail's media upload: 8 MB as message/rfc822, byte for byte."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir, kind="gmail")
    api.script({"status": 503, "code": "backendError"})
    body = b"To: ops@example.com\r\nSubject: big\r\n\r\n" + body_of(8_000_000)
    send(d, rcpts=["ops@example.com"], body=body)
    spooled = capture_spooled(d, api)
    got = api.wait_received(1)[0]
    assert got["api"] == "gmail" and got["mailbox"] == "me"
    assert got["raw"] == spooled
    wait_for(lambda: not queued(d), what="the message removed after the 200")
    d.stop()


def test_a_message_larger_than_the_api_takes_is_refused_while_the_device_is_there(
        daemon_factory, token_server_factory, api_server_factory, pki, workdir):
    """Gmail's media upload takes 35,000,000 bytes at most, and an upstream's
    own limits.max_message_size holds too (a Graph one set to 4000000
    here): the listener says so at RCPT (the SIZE the device declared: the
    recipient's upstream cannot take it) and at the end of DATA, so the
    device hears it."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir, kind="gmail")
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo()
        assert s.mail("dev@lan", ["SIZE=35000001"])[0] == 250
        code, msg = s.rcpt("ops@example.com")
        assert code == 552 and b"35000000" in msg, msg
    d.stop()
    d = daemon_factory(daemon_upstream_settings(
        [api_upstream("graph", api, ts, pki, workdir, limits={"max_message_size": 4_000_000})]))
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo()
        assert s.mail("dev@lan", ["SIZE=4500000"])[0] == 250
        code, msg = s.rcpt("ops@example.com")
        assert code == 552 and b"4000000" in msg, msg
    # Without SIZE: the end of DATA.
    c = send_raw(d, b"To: ops@example.com\r\nSubject: too big\r\n\r\n" + body_of(4_100_000) + b".\r\n",
                 rcpts=["ops@example.com"])
    r = c.reply()
    assert r[-1].startswith("552 5.3.4"), r
    c.close()
    assert not api.requests() and not queued(d)
    d.stop()


def test_the_envelope_decides_who_gets_the_message(daemon_factory, token_server_factory, api_server_factory,
                                                   sink_factory, pki, workdir):
    """The APIs read recipients from the header fields; the envelope is the
    truth: an envelope-only recipient is added as Bcc:, a header address
    outside the envelope never gets it, a recipient routed to another
    upstream is not sent to through the API, and a Bcc: field of the
    device's is not sent on."""
    ts = token_server_factory()
    api = api_server_factory(ts)
    sink = sink_factory(name="partner", user=USER, password=PASSWORD)
    partner = dict(upstream_config(sink, pki, workdir), name="partner")
    routes = [{"recipient_domain": "partner.example", "upstream": "partner"}, {"upstream": "graph"}]
    d = daemon_factory(daemon_upstream_settings([api_upstream("graph", api, ts, pki, workdir), partner],
                                                routes=routes))
    # Bcc-only: the envelope names archive@, no field does; outsider@ is in
    # To: but not in the envelope; buyer@ goes through the partner's SMTP.
    body = (b"From: ups@lan\r\nTo: Ops <ops@example.com>, outsider@elsewhere.example,\r\n buyer@partner.example\r\n"
            b"Cc: boss@example.com\r\nBcc: hidden@example.com\r\nSubject: on battery\r\n\r\nThe UPS is on battery.\r\n")
    send(d, rcpts=["ops@example.com", "archive@example.com", "buyer@partner.example"], body=body)
    got = api.wait_received(1)[0]
    sent_to = sorted(got["recipients"]["to"] + got["recipients"]["cc"] + got["recipients"]["bcc"])
    assert sent_to == ["archive@example.com", "ops@example.com"], got["recipients"]
    assert b"outsider" not in got["raw"] and b"hidden@" not in got["raw"] and b"boss@" not in got["raw"]
    assert got["raw"].endswith(b"\r\n\r\nThe UPS is on battery.\r\n")
    sink.wait_messages(1)
    assert sink.messages()[0]["rcpt_tos"] == ["buyer@partner.example"]
    wait_for(lambda: not queued(d), what="both parts delivered")
    assert len(api.received()) == 1
    d.stop()


def test_each_answer_of_the_table_end_to_end(daemon_factory, token_server_factory, api_server_factory, pki,
                                             workdir):
    """400: the message fails for good and the report carries the API's
    error; 403 quota: held (never bounced) and sent once the hold ends
    (queue flush);
    429 with Retry-After: the upstream rests that long, then delivers;
    401: one fresh token, the same message sent again at once."""
    ts = token_server_factory()
    api = api_server_factory(ts)
    d = daemon_factory(daemon_upstream_settings(
        [api_upstream("graph", api, ts, pki, workdir)]))
    # 400: permanent; the report goes to the sender (through the API too).
    api.script({"status": 400, "code": "ErrorInvalidRecipients", "message": "Mailbox unavailable for recipient"})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: one\r\n\r\nx\r\n")
    [report] = api.wait_received(1)
    assert report["recipients"]["to"] == ["dev@lan"]
    assert b"Microsoft Graph answered 400 ErrorInvalidRecipients: Mailbox unavailable for recipient" in report["raw"]
    # 403 quota: held (a minute at least), never bounced; `queue flush`
    # ends the hold and it goes.
    api.script({"status": 403, "code": "ErrorQuotaExceeded", "message": "Quota exceeded"})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: two\r\n\r\nx\r\n")
    wait_for(lambda: "event=upstream_quota" in d.log(), what="the quota reply")
    wait_for(lambda: [m["state"] for m in queued(d)] == ["held"], what="the message held")
    assert len(api.received()) == 1
    subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], check=True, capture_output=True)
    got = api.wait_received(2, timeout=30)
    assert b"Subject: two" in got[1]["raw"] and got[1]["recipients"]["to"] == ["ops@example.com"]
    # 429 with Retry-After: 3 s of rest for the upstream.
    api.script({"status": 429, "code": "ApplicationThrottled", "retry_after": "3"})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: three\r\n\r\nx\r\n")
    got = api.wait_received(3, timeout=30)
    assert b"Subject: three" in got[2]["raw"]
    assert re.search(r"event=upstream_down upstream=graph://\S+ failures=\d+ retry_in=3s", d.log()), d.log()
    # 401: the token was revoked; one fresh token and the same message again.
    ts.revoke_issued()
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: four\r\n\r\nx\r\n")
    got = api.wait_received(4, timeout=30)
    assert b"Subject: four" in got[3]["raw"]
    assert "event=api_token_refused" in d.log()
    statuses = [r["status"] for r in api.requests() if r["method"] == "POST"]
    assert statuses.count(401) == 1, statuses
    # Nothing bounced but the first; nothing queued.
    assert [r["recipients"]["to"] for r in got].count(["dev@lan"]) == 1
    wait_for(lambda: not queued(d), what="an empty queue")
    d.stop()


def test_the_table_s_other_rows_end_to_end(daemon_factory, token_server_factory, api_server_factory, pki, workdir):
    """403 without a quota (no permission): deferred, never bounced, the
    upstream said to be misconfigured, and sent once that is fixed; 413:
    the message fails for good as too large; 500: retried and sent."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir)
    api.script({"status": 403, "code": "ErrorAccessDenied", "message": "Access is denied."})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: five\r\n\r\nx\r\n")
    wait_for(lambda: "530 5.7.0" in d.log(), what="the 403 as 530 5.7.0")
    assert "the account may not send this way" in d.log()
    subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], check=True, capture_output=True)
    [got] = api.wait_received(1, timeout=30)
    assert b"Subject: five" in got["raw"] and got["recipients"]["to"] == ["ops@example.com"]
    api.script({"status": 413, "code": "ErrorMessageSizeExceeded", "message": "The message exceeds the maximum size"})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: six\r\n\r\nx\r\n")
    report = api.wait_received(2, timeout=30)[1]
    assert report["recipients"]["to"] == ["dev@lan"] and b"552 5.3.4" in report["raw"], report["raw"]
    api.script({"status": 500, "code": "InternalServerError"})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: eight\r\n\r\nx\r\n")
    got = api.wait_received(3, timeout=30)[2]
    assert b"Subject: eight" in got["raw"]
    assert "451 4.4.0 Microsoft Graph answered 500" in d.log()
    wait_for(lambda: not queued(d), what="an empty queue")
    d.stop()


def test_tokens_expiring_between_messages_and_kill_9_during_a_request(daemon_factory, token_server_factory,
                                                                      api_server_factory, pki, workdir):
    """Two-second tokens: every request carries a live one. A kill -9
    while a request is out (the API got it and has not answered): after
    the restart the message is sent again, nothing acknowledged is lost."""
    ts = token_server_factory(lifetime=2)
    api = api_server_factory(ts)
    d = daemon_factory(daemon_upstream_settings([api_upstream("gmail", api, ts, pki, workdir)]))
    for i in range(3):
        send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: n%d\r\n\r\nx\r\n" % i)
        api.wait_received(i + 1)
        wait_for(lambda: len(ts.issued()) >= i + 2, timeout=20, what="a token refreshed between messages")
    assert all(r["token"] == "ok" for r in api.requests()), api.requests()
    api.script({"hang": True})
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: hung\r\n\r\nx\r\n")
    wait_for(lambda: api.hung(), what="the request at the API")
    d.kill9()
    d.start()
    got = api.wait_received(4, timeout=30)
    assert b"Subject: hung" in got[3]["raw"]
    wait_for(lambda: not queued(d), what="an empty queue after the restart")
    d.stop()


def probe(d):
    return subprocess.run([BIN, "probe", "-c", str(d.config)], capture_output=True, text=True, timeout=60)


def test_probe_checks_the_token_its_permission_and_the_mailbox_without_sending(
        daemon_factory, token_server_factory, api_server_factory, pki, workdir):
    """probe on a graph:// upstream: the daemon's token, the Mail.Send
    permission it claims (and Mail.ReadWrite, which large messages need),
    the mailbox read through the API; nothing sent. A token without
    Mail.Send fails the probe, naming what it has."""
    ts = token_server_factory(lifetime=2)
    ts.dir.mkdir(parents=True, exist_ok=True)
    (ts.dir / "roles").write_text("Mail.Send User.Read.All\n")
    api = api_server_factory(ts)
    d = daemon_factory(daemon_upstream_settings([api_upstream("graph", api, ts, pki, workdir)]))
    wait_for(lambda: "event=oauth_token_refreshed" in d.log(), what="the daemon's first token stored")
    p = probe(d)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "token: ok" in p.stdout and "permission: Mail.Send (application)" in p.stdout
    assert f"mailbox: {MAILBOX} found" in p.stdout and "result: ok" in p.stdout
    assert not api.received() and all(r["method"] == "GET" for r in api.requests())
    # Messages over 3 MB go as drafts, which need Mail.ReadWrite: a warning
    # (smaller mail goes), until a token has it.
    assert "large messages: WARNING: the token has no Mail.ReadWrite" in p.stdout, p.stdout
    (ts.dir / "roles").write_text("Mail.Send Mail.ReadWrite\n")
    wait_for(lambda: "large messages: Mail.ReadWrite" in probe(d).stdout, timeout=20,
             what="the probe seeing Mail.ReadWrite in a new token")
    # The app registration loses Mail.Send: the next token says so.
    (ts.dir / "roles").write_text("Calendars.Read\n")
    wait_for(lambda: probe(d).returncode == 1, timeout=20, what="the probe failing on a token without Mail.Send")
    p = probe(d)
    assert "permission: FAILED: the token has no Mail.Send (it has: Calendars.Read)" in p.stdout, p.stdout
    assert not api.received()
    d.stop()


def test_the_graph_recipe_as_the_readme_says(daemon_factory, token_server_factory, api_server_factory, pki,
                                             workdir):
    """README "Microsoft 365 with SMTP AUTH disabled", step by step, with
    conf/examples/microsoft365-graph.yaml (the block the README shows) and
    only its endpoints pointed at the fakes: the secret file (step 4), the
    upstream (step 5), check-config and probe (step 6), then a device's
    message going out as the mailbox, its own From: kept as Reply-To:."""
    import yaml
    root = Path(__file__).resolve().parents[2]
    text = (root / "conf/examples/microsoft365-graph.yaml").read_text()
    assert text[text.index("upstreams:"):] in (root / "README.md").read_text()
    recipe = yaml.safe_load(text)
    ts = token_server_factory()
    ts.dir.mkdir(parents=True, exist_ok=True)
    (ts.dir / "roles").write_text("Mail.Send\n")  # step 2: the application permission, consented
    api = api_server_factory(ts)
    secret = workdir / "m365-client.secret"  # step 4
    secret.write_text(CLIENT_SECRET + "\n")
    secret.chmod(0o600)
    [u] = recipe["upstreams"]
    u["oauth"]["client_secret_file"] = str(secret)
    # The fakes instead of login.microsoftonline.com and graph.microsoft.com.
    u["oauth"].update(token_url=ts.url, ca_file=pki.ca_file, client_id="app-1")
    u.update(api_base=api.base, ca_file=pki.ca_file)
    d = daemon_factory(daemon_upstream_settings([u]), start=False)
    r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d.start()
    wait_for(lambda: "event=oauth_token_refreshed" in d.log(), what="the daemon's token stored")
    p = probe(d)
    assert p.returncode == 0, p.stdout
    for line in ("token: ok", "permission: Mail.Send (application)", "mailbox: scanner@contoso.com found"):
        assert line in p.stdout, p.stdout
    send(d, rcpts=["ops@example.com"], sender="printer@lan",
         body=b"From: Printer <printer@lan>\r\nTo: ops@example.com\r\nSubject: toner low\r\n\r\nToner at 5%.\r\n")
    got = api.wait_received(1)[0]
    assert got["mailbox"] == "scanner@contoso.com"
    assert re.search(rb"\r\nFrom: Printer <scanner@contoso.com>\r\n", got["raw"]), got["raw"]
    assert b"Reply-To: Printer <printer@lan>" in got["raw"]
    assert got["recipients"]["to"] == ["ops@example.com"]
    wait_for(lambda: not queued(d), what="an empty queue")
    d.stop()


def test_requests_run_in_parallel_up_to_the_upstream_s_sessions_over_kept_alive_connections(
        daemon_factory, token_server_factory, api_server_factory, pki, workdir):
    """limits.max_connections 3: with slow answers, three requests are out
    at once and never a fourth; the connections are reused (fewer TCP
    connections than requests)."""
    ts = token_server_factory()
    api = api_server_factory(ts)
    api.dir.mkdir(parents=True, exist_ok=True)
    (api.dir / "delay").write_text("0.4")
    d = daemon_factory(daemon_upstream_settings(
        [api_upstream("graph", api, ts, pki, workdir, limits={"max_connections": 3})]), start=False)
    d.start()
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        for i in range(12):
            s.sendmail("dev@lan", ["ops@example.com"], b"To: ops@example.com\r\nSubject: p%d\r\n\r\nx\r\n" % i)
    api.wait_received(12, timeout=60)
    sends = [r for r in api.requests() if r["method"] == "POST"]
    assert max(r["busy"] for r in sends) == 3, [r["busy"] for r in sends]
    assert len({r["peer"] for r in api.requests()}) < len(api.requests()), "no connection was reused"
    d.stop()


def test_kill_9_at_random_points_of_api_delivery_loses_nothing(daemon_factory, token_server_factory,
                                                               api_server_factory, pki, workdir):
    """Twenty messages through Graph; the daemon is killed with SIGKILL at
    three random moments of the stream (requests out, answers coming in,
    outcomes being written) and restarted each time. Every message
    acknowledged with 250 reaches the API at least once, and the queue ends
    empty (a copy sent twice is the accepted cost of the answer-to-removal
    window, as for SMTP)."""
    import random
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    ts = token_server_factory()
    api = api_server_factory(ts)
    api.dir.mkdir(parents=True, exist_ok=True)
    (api.dir / "delay").write_text("0.15")
    # One request at a time, so that the stream lasts long enough to be cut.
    d = daemon_factory(daemon_upstream_settings(
        [api_upstream("graph", api, ts, pki, workdir, limits={"max_connections": 1})]))
    subjects = [b"k%02d" % i for i in range(20)]
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        for subj in subjects:
            s.sendmail("dev@lan", ["ops@example.com"], b"To: ops@example.com\r\nSubject: " + subj + b"\r\n\r\nx\r\n")
    kills = []
    for _ in range(3):
        # A random moment: after 0 to 6 more messages reached the API.
        target = min(len(subjects), len(api.received()) + rnd.randrange(0, 7))
        wait_for(lambda: len(api.received()) >= target or not queued(d), timeout=30,
                 what=f"{target} messages at the API (seed {seed})")
        cut_short = bool(queued(d))
        d.kill9()
        d.start()
        kills.append(cut_short)
    assert any(kills), "every kill came after the stream ended: the test proved nothing"
    wait_for(lambda: not queued(d), timeout=60, what=f"an empty queue (seed {seed})")
    got = {re.search(rb"Subject: (k\d\d)", r["raw"]).group(1) for r in api.received()}
    assert got == set(subjects), (seed, sorted(set(subjects) - got))
    d.stop()


def test_a_recipient_delivered_in_an_earlier_attempt_is_not_sent_again_through_the_api(
        daemon_factory, token_server_factory, api_server_factory, sink_factory, pki, workdir):
    """Failover from SMTP to Graph mid-message: the SMTP upstream takes one
    recipient, refuses one for good (550) and defers the third (451), then
    goes away; the retry fails over to Graph carrying only the pending
    recipient, and the copy sent names only that one, although the
    device's To: names all three (the refused one gets its report)."""
    ts = token_server_factory()
    api = api_server_factory(ts)
    sink = sink_factory(name="smtp", user=USER, password=PASSWORD)
    smtp_up = dict(upstream_config(sink, pki, workdir), name="smtp")
    d = daemon_factory(daemon_upstream_settings([smtp_up, api_upstream("graph", api, ts, pki, workdir)]))
    send(d, rcpts=["ok@example.com", "gone+550@example.com", "later+451@example.com"],
         body=b"To: ok@example.com, gone+550@example.com, later+451@example.com\r\nSubject: all\r\n\r\nx\r\n")
    sink.wait_messages(1)
    assert sink.messages()[0]["rcpt_tos"] == ["ok@example.com"]
    sink.stop()
    got = api.wait_received(1)[0]
    assert got["recipients"] == {"to": ["later+451@example.com"], "cc": [], "bcc": []}, got["recipients"]
    assert b"ok@example.com" not in got["raw"] and b"gone+550" not in got["raw"]
    wait_for(lambda: not queued(d), what="an empty queue")
    report = [r for r in api.received() if r["recipients"]["to"] == ["dev@lan"]]
    assert len(report) == 1 and b"gone+550@example.com" in report[0]["raw"]
    d.stop()


def test_probe_of_a_gmail_api_upstream(daemon_factory, token_server_factory, api_server_factory, pki, workdir):
    """gmail-api://me: Google's tokens are opaque (no permission to read
    from them); the profile read through the API says the token works."""
    d, api, ts = make_api(daemon_factory, token_server_factory, api_server_factory, pki, workdir, kind="gmail")
    wait_for(lambda: "event=oauth_token_refreshed" in d.log(), what="the daemon's first token stored")
    p = probe(d)
    assert p.returncode == 0, p.stdout
    assert "api: Gmail messages.send at https://localhost:" in p.stdout
    assert "mailbox: me found" in p.stdout and "result: ok" in p.stdout
    assert [r["path"] for r in api.requests()] == ["/gmail/v1/users/me/profile"]
    d.stop()


def test_a_reload_mid_stream_ends_the_api_session_after_its_message(daemon_factory, token_server_factory,
                                                                     api_server_factory, pki, workdir):
    """Slow answers, one request at a time; a reload changes the mailbox the
    upstream sends as. The API session that was busy ends after the message
    it carries (it holds the old upstream), the rest goes out as the new
    mailbox, and every message arrives once."""
    import os
    import signal
    ts = token_server_factory()
    api = api_server_factory(ts)
    api.dir.mkdir(parents=True, exist_ok=True)
    (api.dir / "delay").write_text("0.3")
    graph = api_upstream("graph", api, ts, pki, workdir, limits={"max_connections": 1})
    settings = daemon_upstream_settings([graph])
    d = daemon_factory(settings)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        for i in range(8):
            s.sendmail("dev@lan", ["ops@example.com"], b"To: ops@example.com\r\nSubject: r%d\r\n\r\nx\r\n" % i)
    api.wait_received(1)
    d.write_config(dict(settings, upstreams=[dict(graph, url="graph://other@contoso.example")]))
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reloaded")
    at_reload = len(api.received())
    wait_for(lambda: not queued(d), timeout=30, what="an empty queue")
    got = api.received()
    old = [r for r in got[at_reload:] if r["mailbox"] == MAILBOX]
    assert len(old) <= 1, [(r["mailbox"], r["raw"][-40:]) for r in got]
    subjects = sorted(re.search(rb"Subject: (r\d)", r["raw"]).group(1) for r in got)
    assert subjects == [b"r%d" % i for i in range(8)], subjects
    d.stop()


def test_gmail_through_a_workspace_service_account(daemon_factory, token_server_factory, api_server_factory, pki,
                                                   workdir):
    """A Google Workspace service account with domain-wide delegation
    (grant: service_account): each token request is a JWT-bearer grant
    (RFC 7523) signed with the key file's key, for the upstream's user
    with the gmail.send scope; the endpoint checks the signature and the
    claims, and the message goes through the Gmail API as that user. A key
    file that is not a service account's is named in the log, its content
    never."""
    from test_oauth import rsa_credential
    cert, key = rsa_credential(workdir)
    account = "relay@project.iam.gserviceaccount.com"
    ts = token_server_factory(client_cert=cert, service_account=account)
    api = api_server_factory(ts)
    key_file = workdir / "service-account.json"
    key_file.write_text(json.dumps({"type": "service_account", "project_id": "project", "private_key_id": "k1",
                                    "private_key": key.read_text(), "client_email": account, "client_id": "1",
                                    "token_uri": "https://oauth2.googleapis.com/token"}))
    key_file.chmod(0o600)
    u = {"name": "workspace", "url": "gmail-api://scanner@example.com", "api_base": api.base, "ca_file": pki.ca_file,
         "oauth": {"provider": "google", "grant": "service_account", "key_file": str(key_file),
                   "token_url": ts.url, "ca_file": pki.ca_file}}
    d = daemon_factory(daemon_upstream_settings([u]))
    send(d, rcpts=["ops@example.com"], body=b"To: ops@example.com\r\nSubject: sa\r\n\r\nx\r\n")
    [got] = api.wait_received(1)
    assert got["api"] == "gmail" and got["mailbox"] == "scanner@example.com" and b"Subject: sa" in got["raw"]
    [grant] = [r for r in ts.requests() if r["outcome"] == "ok"]
    assert grant["grant"] == "urn:ietf:params:oauth:grant-type:jwt-bearer", grant
    assert grant["sub"] == "scanner@example.com" and grant["client_id"] is None
    assert grant["scope"] == "https://www.googleapis.com/auth/gmail.send"
    d.stop()
    # A user's OAuth client file where the service account key should be
    # (a daemon with no token stored yet).
    key_file.write_text(json.dumps({"type": "authorized_user", "client_secret": "not-to-be-logged"}))
    d = daemon_factory(daemon_upstream_settings([u]))
    wait_for(lambda: "not a service account key" in d.log(), what="the key file's trouble in the log")
    assert "not-to-be-logged" not in d.log()
    d.stop()
