# SPDX-License-Identifier: MIT
"""The outbound half: the real binary delivering to real TLS SMTP servers."""
import datetime
import os
import signal
import smtplib
import socket
import subprocess

import pytest

from conftest import BIN, PASSWORD, SANITIZED, USER, daemon_upstream_settings, make_pair, send, send_utf8, upstream_config, wait_for

@pytest.mark.parametrize("tls,scheme", [("implicit", "smtps"), ("starttls", "smtp+starttls")])
def test_round_trip(daemon_factory, sink_factory, pki, workdir, tls, scheme):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, tls=tls, scheme=scheme)
    send(d, rcpts=("ops@example.com", "dba@example.com"))
    [m] = sink.wait_messages(1)
    assert m["mail_from"] == "dev@lan"
    assert m["rcpt_tos"] == ["ops@example.com", "dba@example.com"]
    assert m["auth_user"] == USER
    content = m["content"]
    assert content.startswith(b"Received: from ")
    assert content.endswith(b"Subject: hello\r\nDate: " + content.split(b"Date: ")[1].split(b"\r\n")[0] +
                            b"\r\nMessage-ID: " + content.split(b"Message-ID: ")[1].split(b"\r\n")[0] +
                            b"\r\n\r\nline one\r\n.dot line\r\n")
    wait_for(lambda: d.queue() == [], what="queue empty")
    events = sink.events()
    if tls == "starttls":
        assert events[0].endswith("tls=no") and events[1].endswith("tls=yes")
    assert any(e.startswith("AUTH PLAIN relay@example.com ok") for e in events)
    assert "event=delivered" in d.log()


def test_per_recipient_results(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir)
    send(d, rcpts=("ok@example.com", "busy+451@example.com", "gone+550@example.com"))
    [m] = sink.wait_messages(1)
    assert m["rcpt_tos"] == ["ok@example.com"]
    [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="deferred entry")
    assert entry["state"] == "deferred"
    assert entry["pending"] == ["busy+451@example.com"]
    assert entry["last_error"].startswith("451 4.1.1 scripted reply") or entry["last_error"].startswith("550")
    # The retry goes to the 451 recipient alone.
    wait_for(lambda: sum(1 for e in sink.events() if e.startswith("RCPT busy+451")) >= 2, what="retry")
    rcpts = [e for e in sink.events() if e.startswith("RCPT")]
    assert rcpts.count("RCPT ok@example.com") == 1 and rcpts.count("RCPT gone+550@example.com") == 1
    assert len(sink.messages()) == 1


def test_a_message_needing_smtputf8_goes_out_with_it(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir)
    send_utf8(d)
    [m] = sink.wait_messages(1)
    assert m["rcpt_tos"] == ["j\u00f6rg@example.com"]
    assert "SMTPUTF8" in m["mail_options"]
    assert "\r\nSubject: gr\u00fc\u00dfe\r\n".encode() in m["content"]
    assert m["content"].endswith(b"\r\n\r\nhallo\r\n")


def test_wrong_password_defers_and_never_sends_mail(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, password="wrong")
    send(d)
    # The failure is logged when the server answers 535; the spool records
    # the deferral a moment later (the "deferred" line).
    wait_for(lambda: "event=auth_failed" in d.log() and "event=deferred " in d.log(), what="auth failure and deferral")
    [entry] = d.queue()
    assert "authentication failed: 535" in entry["last_error"]
    assert not any(e.startswith(("MAIL", "RCPT", "DATA")) for e in sink.events())
    assert PASSWORD not in d.log() and "wrong" not in d.log()
    assert d.log().count("event=auth_failed") == 1


def test_a_refreshed_token_file_is_used_without_a_reload(daemon_factory, sink_factory, pki, workdir):
    # An OAuth2 access token lives about an hour; a refresher replaces the
    # file (write, rename). The next session reads it: no SIGHUP needed.
    sink = sink_factory(tls="implicit", user=USER, password="token-2")
    up = upstream_config(sink, pki, workdir, password="token-1", auth="xoauth2")
    settings = daemon_upstream_settings([up])
    settings["delivery"]["idle_hold"] = "0s"  # every message a new session
    settings["delivery"]["retry"] = {"first": "1h", "max": "2h", "factor": 2, "jitter": 0}  # retried by flush only
    d = daemon_factory(settings)
    send(d)
    wait_for(lambda: "event=deferred " in d.log(), what="the expired token refused")
    assert [e for e in sink.events() if e.startswith("AUTH")] == [f"AUTH XOAUTH2 {USER} refused"]
    fresh = workdir / "password.new"
    fresh.write_text("token-2\n")
    fresh.rename(up["password_file"])
    out = subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    sink.wait_messages(1)
    wait_for(lambda: d.queue() == [], what="delivered")
    assert [e for e in sink.events() if e.startswith("AUTH")][-1] == f"AUTH XOAUTH2 {USER} ok"
    assert "event=reloaded" not in d.log()
    # A file that cannot be read now, or is empty (a refresher caught
    # mid-write), or holds a control character: a warning each time, and the
    # session goes on with the last good secret (token-2), never an empty
    # one; both messages are delivered.
    for bad in (None, b"", b"tok\x01en-3\n"):
        if bad is None:
            os.unlink(up["password_file"])
        else:
            with open(up["password_file"], "wb") as f:
                f.write(bad)
        n = d.log().count("event=secret_unreadable")
        send(d)
        wait_for(lambda: d.log().count("event=secret_unreadable") == n + 1, what="the warning")
        wait_for(lambda: d.queue() == [], what="delivered with the last good secret")
    assert [e for e in sink.events() if e.startswith("AUTH")][-3:] == [f"AUTH XOAUTH2 {USER} ok"] * 3
    assert "the secret is empty" in d.log() and "must not contain control characters" in d.log()


CERT_CASES = {
    "unknown CA": dict(ca="other"),
    "wrong host": dict(leaf_kw=dict(cn="mail.other.example", dns=("mail.other.example",), ips=())),
    "expired": dict(leaf_kw=dict(not_after_days=-1)),
    "not yet valid": dict(leaf_kw=dict(not_before_days=2)),
    "wildcard mismatch": dict(leaf_kw=dict(cn="*.example.com", dns=("*.example.com",), ips=())),
    "CN only": dict(leaf_kw=dict(cn="localhost", dns=(), ips=())),
    "pin mismatch": dict(pins="other"),
}


@pytest.mark.parametrize("case", list(CERT_CASES), ids=list(CERT_CASES))
@pytest.mark.parametrize("tls,scheme", [("implicit", "smtps"), ("starttls", "smtp+starttls")])
def test_bad_certificates_keep_mail_queued(daemon_factory, sink_factory, pki, workdir, case, tls, scheme):
    spec = CERT_CASES[case]
    kw = dict(spec.get("leaf_kw", {}))
    now = datetime.datetime.now(datetime.timezone.utc)
    if "not_after_days" in kw:
        kw["not_before"] = now - datetime.timedelta(days=10)
        kw["not_after"] = now + datetime.timedelta(days=kw.pop("not_after_days"))
    if "not_before_days" in kw:
        kw["not_before"] = now + datetime.timedelta(days=kw.pop("not_before_days"))
    cert, key = pki.leaf(f"bad-{abs(hash(case))}", **kw)
    sink = sink_factory(tls=tls, cert=cert, key=key, user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir, scheme=scheme)
    if spec.get("ca") == "other":
        up["ca_file"] = pki.other_ca_file
    if spec.get("pins") == "other":
        up["pins"] = [pki.spki_pin(pki.other_root)]
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="deferred")
    assert "certificate verification failed" in entry["last_error"], entry
    assert not any(e.startswith(("AUTH", "MAIL", "RCPT", "DATA")) for e in sink.events())
    assert sink.messages() == []


@pytest.mark.parametrize("anchor", ["intermediate", "pin-leaf", "pin-intermediate"])
def test_intermediate_anchor_and_pins(daemon_factory, sink_factory, pki, workdir, anchor):
    cert, key = pki.leaf("server")
    sink = sink_factory(tls="implicit", cert=cert, key=key, user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    if anchor == "intermediate":
        up["ca_file"] = pki.inter_file
    elif anchor == "pin-intermediate":
        up["pins"] = [pki.spki_pin(pki.inter)]
    else:
        import subprocess
        pin = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=pin, capture_output=True).stdout
        import base64
        import hashlib
        up["pins"] = [base64.b64encode(hashlib.sha256(der).digest()).decode()]
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    sink.wait_messages(1)
    wait_for(lambda: d.queue() == [], what="queue empty")


def test_starttls_missing_is_a_failure_not_a_fallback(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="none")
    up = upstream_config(sink, pki, workdir, scheme="smtp+starttls")
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="deferred")
    assert "STARTTLS is required but the server does not offer it" in entry["last_error"]
    assert {e.split()[0] for e in sink.events()} <= {"EHLO", "QUIT"}


def test_connection_reuse_with_rset(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["max_connections"] = 1
    d = daemon_factory(settings)
    # Queue five messages while delivery is held off by a first slow session:
    # simplest is to send them in one SMTP session quickly; whatever the
    # timing, every message after the first in a session comes after RSET.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        for i in range(5):
            s.sendmail("dev@lan", ["ops@example.com"], f"Subject: {i}\r\n\r\nx\r\n".encode())
    sink.wait_messages(5)
    wait_for(lambda: d.queue() == [], what="queue empty")
    events = [e.split()[0] for e in sink.events()]
    assert events.count("MAIL") == 5
    # Fewer sessions (one EHLO each) than messages, and every message after a
    # session's first one follows an RSET.
    sessions = events.count("EHLO")
    assert sessions < 5
    assert events.count("RSET") == 5 - sessions
    for i, e in enumerate(events):
        if e == "MAIL" and i > 0 and events[i - 1] not in ("EHLO", "AUTH"):
            assert events[i - 1] == "RSET", events


def one_by_one(d, sink, n, first=0):
    """Sends n messages, each after the previous one was delivered: the way a
    device sends an alert now and then. The daemon's "delivered" line is the
    mark, not the sink's copy: the session takes its next message (or is
    held) in the same step that logs it, while a message sent as soon as the
    sink has stored the last one may find that session still busy and open
    another."""
    for i in range(first, first + n):
        send(d, body=f"Subject: {i}\r\n\r\nx\r\n".encode())
        sink.wait_messages(i + 1)
        wait_for(lambda: d.log().count("event=delivered ") >= i + 1, what=f"message {i} delivered")


def test_idle_hold_carries_one_by_one_mail_over_one_session(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, hold="5m")
    one_by_one(d, sink, 4)
    verbs = [e.split()[0] for e in sink.events()]
    # One handshake and login for all four; RSET between messages; no QUIT
    # while the session is held.
    assert verbs.count("EHLO") == 1 and verbs.count("AUTH") == 1, verbs
    assert verbs.count("RSET") == 3 and "QUIT" not in verbs, verbs
    # Shutdown ends the held session with QUIT (not the deadline's abort).
    d.stop()
    assert sink.events()[-1] == "QUIT"
    wait_for(lambda: sink.events(connections=True)[-1] == "CLOSE", what="connection closed")


def test_idle_hold_ends_with_quit_and_the_next_message_opens_a_session(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, hold="1s")
    one_by_one(d, sink, 1)
    wait_for(lambda: sink.events(connections=True)[-2:] == ["QUIT", "CLOSE"], what="QUIT after the hold")
    one_by_one(d, sink, 1, first=1)
    verbs = [e.split()[0] for e in sink.events()]
    assert verbs.count("EHLO") == 2 and "RSET" not in verbs, verbs


def test_idle_hold_zero_quits_after_each_message(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, hold="0s")
    one_by_one(d, sink, 2)
    wait_for(lambda: [e.split()[0] for e in sink.events()].count("QUIT") == 2, what="two QUITs")
    verbs = [e.split()[0] for e in sink.events()]
    assert verbs.count("EHLO") == 2 and "RSET" not in verbs, verbs


def test_server_ending_a_held_session_is_not_a_failure(daemon_factory, sink_factory, pki, workdir):
    # The sink ends a session idle for 1 s with "421 4.4.2 ... timeout exceeded".
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, sink_kw={"idle_timeout": 1}, hold="5m")
    one_by_one(d, sink, 1)
    wait_for(lambda: sink.events(connections=True)[-2:] == ["TIMEOUT", "CLOSE"], what="the sink's idle timeout")
    one_by_one(d, sink, 1, first=1)
    wait_for(lambda: d.queue() == [], what="queue empty")
    log = d.log()
    for bad in ("upstream_down", "upstream_failed", "deferred"):
        assert f"event={bad}" not in log, log
    assert [e.split()[0] for e in sink.events()].count("EHLO") == 2


@pytest.mark.parametrize("tls,scheme", [("implicit", "smtps"), ("starttls", "smtp+starttls")])
def test_tls_sessions_are_resumed_and_a_reload_starts_afresh(daemon_factory, sink_factory, pki, workdir, tls, scheme):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, tls=tls, scheme=scheme, hold="0s")
    one_by_one(d, sink, 3)
    tls_ehlos = [e for e in sink.events() if e.startswith("EHLO") and e.endswith("tls=yes")]
    # The first session does the full handshake; the next ones resume it.
    assert [e.split()[2] for e in tls_ehlos] == ["resumed=no", "resumed=yes", "resumed=yes"], tls_ehlos
    # A reload builds a new TLS context (anchors and pins may have changed):
    # its first session verifies the server again.
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reloaded")
    one_by_one(d, sink, 1, first=3)
    tls_ehlos = [e for e in sink.events() if e.startswith("EHLO") and e.endswith("tls=yes")]
    assert tls_ehlos[-1].split()[2] == "resumed=no", tls_ehlos


def test_reload_ends_held_sessions(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, hold="5m")
    one_by_one(d, sink, 1)
    # A reload may change credentials or the upstream: a held session carries
    # the old ones, so it ends.
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: sink.events(connections=True)[-2:] == ["QUIT", "CLOSE"], what="QUIT after the reload")
    one_by_one(d, sink, 1, first=1)
    assert [e.split()[0] for e in sink.events()].count("EHLO") == 2


def test_failover_to_the_next_upstream(daemon_factory, sink_factory, pki, workdir):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    good = upstream_config(sink, pki, workdir)
    dead = dict(good, url=f"smtps://localhost:{dead_port}")
    d = daemon_factory(daemon_upstream_settings([dead, good]))
    send(d)
    [m] = sink.wait_messages(1)
    wait_for(lambda: d.queue() == [], what="delivered")
    log = d.log()
    assert f"upstream=smtps://localhost:{dead_port}" in log and "event=upstream_down" in log


def test_plaintext_upstream_only_on_loopback_and_never_with_auth(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="none")
    up = {"url": f"smtp://127.0.0.1:{sink.port}", "insecure_plaintext": True}
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    [m] = sink.wait_messages(1)
    assert m["auth_user"] is None


def test_thousand_sessions_leave_no_fd_or_memory_behind(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["messages_per_connection"] = 1  # a new session for every message
    settings["delivery"]["max_connections"] = 4
    d = daemon_factory(settings)



    def batch(n, start):
        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            for i in range(start, start + n):
                s.sendmail("dev@lan", ["ops@example.com"], f"Subject: {i}\r\n\r\nx\r\n".encode())

    batch(100, 0)
    wait_for(lambda: len(sink.messages()) >= 100 and d.queue() == [], timeout=120, what="first 100")
    fds0, rss0 = d.fd_count(), d.rss_kib()
    for k in range(9):
        batch(100, 100 * (k + 1))
    wait_for(lambda: len(list(sink.dir.glob("*.eml"))) >= 1000 and d.queue() == [], timeout=300,
             what="1000 deliveries")
    wait_for(lambda: "event=upstream_connect" not in d.log()[-2000:] or d.fd_count() <= fds0, timeout=10, what="settle")
    fds1, rss1 = d.fd_count(), d.rss_kib()
    print(f"sessions=1000 fds {fds0}->{fds1} rss {rss0}->{rss1} KiB")
    assert d.log().count("event=upstream_ready") >= 1000
    assert fds1 <= fds0
    if not SANITIZED:
        assert rss1 - rss0 < 2048, (rss0, rss1)


def test_auth_login_when_forced(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, auth="login")
    send(d)
    [m] = sink.wait_messages(1)
    assert m["auth_user"] == USER
    assert any(e.startswith("AUTH LOGIN relay@example.com ok") for e in sink.events())


@pytest.mark.parametrize("with_cert", [True, False], ids=["with-client-cert", "without"])
def test_client_certificate(daemon_factory, sink_factory, pki, workdir, with_cert):
    sink = sink_factory(tls="implicit", client_ca=pki.ca_file)
    up = upstream_config(sink, pki, workdir, user=None)
    if with_cert:
        ccert, ckey = pki.leaf("client", cn="relay.test", dns=("relay.test",), ips=(), client=True)
        up.update(client_cert=ccert, client_key=ckey)
    d = daemon_factory(daemon_upstream_settings([up]))
    send(d)
    if with_cert:
        sink.wait_messages(1)
        wait_for(lambda: d.queue() == [], what="delivered")
    else:
        [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="deferred")
        # With TLS 1.3 the server refuses the missing certificate after our
        # side of the handshake is done: we see it close the connection.
        assert "TLS" in entry["last_error"] or "connection lost" in entry["last_error"]
        assert sink.messages() == [] and sink.events() == []


def test_relaying_twenty_megabytes_keeps_memory_bounded(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir)
    body = b"Subject: big\r\n\r\n" + (b"0123456789" * 9 + b"\r\n") * (20 * 1024 * 1024 // 92)
    send(d, body=body)
    [m] = sink.wait_messages(1, timeout=120)
    assert m["content"].endswith(body[body.index(b"\r\n\r\n") + 4:])
    wait_for(lambda: d.queue() == [], what="delivered")
    if not SANITIZED:
        assert d.rss_peak_kib() < 30 * 1024, d.rss_peak_kib()


def test_permanent_failure_bounces_to_the_sender(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir)
    send(d, rcpts=("ok@example.com", "gone+550@example.com"), sender="dev@lan")
    msgs = sink.wait_messages(2)
    wait_for(lambda: d.queue() == [], what="queue empty")
    original, report = msgs
    assert original["rcpt_tos"] == ["ok@example.com"]
    assert report["mail_from"] in ("", "<>") and report["rcpt_tos"] == ["dev@lan"]
    text = report["content"].decode()
    assert "Content-Type: multipart/report; report-type=delivery-status;" in text
    assert "Final-Recipient: rfc822; gone+550@example.com" in text
    assert "Status: 5.1.1" in text and "Diagnostic-Code: smtp; 550 5.1.1 scripted reply" in text
    assert "Content-Type: text/rfc822-headers\r\n\r\nReceived: from " in text
    assert "ok@example.com" not in text.split("Content-Type: message/delivery-status")[1].split("--")[0]
    [reason] = list((d.spool / "failed").glob("*.reason"))
    assert "gone+550@example.com" in reason.read_text()


@pytest.mark.parametrize("case", ["null-sender", "bounce-off"])
def test_no_bounce_for_null_sender_or_when_off(daemon_factory, sink_factory, pki, workdir, case):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    if case == "bounce-off":
        settings["delivery"]["bounce"] = False
    d = daemon_factory(settings)
    send(d, rcpts=("gone+550@example.com",), sender="" if case == "null-sender" else "dev@lan")
    wait_for(lambda: d.queue() == [] and list((d.spool / "failed").glob("*.reason")), what="failed")
    assert sink.messages() == []
    assert "event=bounce_queued" not in d.log()


def test_lifetime_expiry_fails_the_message_and_reports_it(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["max_lifetime"] = "1s"
    settings["delivery"]["retry"] = {"first": "1s", "max": "1s", "factor": 1, "jitter": 0}
    d = daemon_factory(settings)
    send(d, rcpts=("busy+451@example.com",), sender="dev@lan")
    [report] = sink.wait_messages(1)  # the only message that can arrive is the report
    wait_for(lambda: d.queue() == [], what="expired and removed")
    text = report["content"].decode()
    assert report["rcpt_tos"] == ["dev@lan"]
    assert "Final-Recipient: rfc822; busy+451@example.com" in text
    assert "Status: 4.4.7" in text and "delivery time expired" in text
    [reason] = list((d.spool / "failed").glob("*.reason"))
    assert "delivery time expired" in reason.read_text()


@pytest.mark.parametrize("content", [b"pass\x01word\n", b"\n", b""], ids=["control character", "blank", "empty"])
def test_a_bad_secret_file_is_refused_at_start_with_its_key_path(daemon_factory, sink_factory, pki, workdir, content):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    d = daemon_factory(daemon_upstream_settings([up]), start=False)
    with open(up["password_file"], "wb") as f:
        f.write(content)
    d.start(expect_ready=False)
    assert d.proc.wait(timeout=30) != 0
    log = d.log()
    assert "upstreams[0].password_file: " + up["password_file"] + ": the secret" in log, log
    assert ("control characters" in log) == (content == b"pass\x01word\n")


def test_a_world_readable_secret_is_warned_about(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    os.chmod(up["password_file"], 0o644)
    d = daemon_factory(daemon_upstream_settings([up]))
    assert ('event=secret_permissions key=upstreams[0].password_file file=' + up["password_file"] + ' mode=0644'
            in d.log()), d.log()
    os.chmod(up["password_file"], 0o640)
    n = d.log().count("event=secret_permissions")
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reload")
    assert d.log().count("event=secret_permissions") == n


def test_the_daemon_is_not_dumpable(daemon_factory, workdir):
    """No core dump or same-uid ptrace of a process holding secrets: run as
    an unprivileged user, /proc/PID belongs to root once the process made
    itself non-dumpable."""
    import pwd
    os.chmod(workdir, 0o755)
    d = daemon_factory(start=False)
    os.chmod(d.dir, 0o755)
    nobody = pwd.getpwnam("nobody")
    d.spool.mkdir()
    os.chown(d.spool, nobody.pw_uid, nobody.pw_gid)
    d.prefix = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    d.env = {"ASAN_OPTIONS": "detect_leaks=0"}
    d.start()
    st = os.stat(f"/proc/{d.pid}/status")
    assert st.st_uid == 0, (st.st_uid, d.pid)  # owned by the process uid (nobody) while dumpable
    assert [l for l in open(f"/proc/{d.pid}/status") if l.startswith("Uid:")][0].split()[1] == str(nobody.pw_uid)


def test_a_throttling_reply_backs_the_upstream_off(daemon_factory, sink_factory, pki, workdir):
    """451 4.7.0 "try again later" is about the site: the session QUITs after
    that message and the whole upstream backs off (the other message waits,
    nothing is failed)."""
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir)
    send(d, rcpts=("ops+throttle@example.com",))
    wait_for(lambda: "event=upstream_down" in d.log(), what="the site backoff")
    line = next(l for l in d.log().splitlines() if "event=upstream_down" in l)
    assert "failures=1" in line
    [entry] = d.queue()
    assert entry["state"] == "deferred" and entry["last_error"].startswith("451 4.7.0")
    assert "QUIT" in [e.split()[0] for e in sink.events()]
    assert "event=failed" not in d.log()
