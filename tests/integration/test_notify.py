# SPDX-License-Identifier: MIT
"""Notifications (issue 18): trouble reaches a person without mail. A fake
webhook receiver over TLS (tests/support/fake_webhook.py) records what
arrives: each condition raised and cleared once, signed when a secret is
set, in each target's format, retried while the receiver fails, kept in the
spool across a kill -9, and never message content or a secret."""
import hashlib
import hmac
import json
import os
import signal
import subprocess

from conftest import BIN, PASSWORD, USER, daemon_upstream_settings, free_port, send, upstream_config, wait_for
from test_observability import get, metrics_settings

SECRET = "hmac-k3y-for-the-receiver"
CONTENT = b"Subject: payroll-secret-subject\r\n\r\nconfidential body line\r\n"


def target(webhook, pki, path, fmt="generic", **extra):
    t = {"url": f"{webhook.base}{path}", "format": fmt, "ca_file": pki.ca_file}
    t.update(extra)
    return t


def generic_events(webhook, path="/hook"):
    """The JSON bodies a generic target accepted, in order."""
    return [json.loads(r["body"]) for r in webhook.accepted(path)]


def changes(events, name):
    return [e["change"] for e in events if e["event"] == name]


def no_content_or_secret(webhook, *secrets):
    for r in webhook.requests():
        blob = r["body"] + json.dumps(r["headers"])
        assert b"payroll" not in blob.encode() and "confidential" not in blob, blob
        for s in secrets:
            assert s not in blob, (s, blob)


def test_conditions_are_raised_and_cleared_once_signed_and_without_content(daemon_factory, sink_factory, webhook,
                                                                           pki, workdir):
    """An upstream nobody answers (connection refused) with a message queued
    for it: after notify_thresholds.upstream_down (1 s here) the upstream is
    down, after queue_age (2 s) the queue is stale; both are raised once,
    to the generic target (signed: X-Spoolgate-Signature is the HMAC-SHA256
    of "<timestamp>.<body>" with the secret file's key) and, for the one
    event it asks for, to an ntfy topic. A reload to a working upstream and
    the message delivered clear both, once. The status page shows them
    while they last. No payload holds the message's content, the
    upstream's password or the HMAC secret."""
    secret = workdir / "hook.secret"
    secret.write_text(SECRET + "\n")
    dead = {"url": f"smtps://localhost:{free_port()}", "ca_file": pki.ca_file}
    settings = metrics_settings([dead])
    settings["notify"] = [target(webhook, pki, "/hook", secret_file=str(secret)),
                          target(webhook, pki, "/spoolgate-alerts", "ntfy", events=["queue_stale"])]
    settings["notify_thresholds"] = {"upstream_down": "1s", "queue_age": "2s", "repeat": "0s"}
    d = daemon_factory(settings)
    send(d, body=CONTENT)
    wait_for(lambda: {"upstream_down", "queue_stale"} <= {e["event"] for e in generic_events(webhook)},
             timeout=30, what="both conditions raised")
    wait_for(lambda: webhook.accepted("/spoolgate-alerts"), what="the ntfy topic told")
    doc = json.loads(get(d, "/status.json")[2])
    assert {a["event"] for a in doc["alerts"]} == {"upstream_down", "queue_stale"}, doc["alerts"]
    page = get(d, "/")[2]
    assert 'data-alert="upstream_down"' in page and 'data-alert="queue_stale"' in page
    assert 'spoolgate_alert_active{event="queue_stale",key="queue"} 1' in get(d, "/metrics")[2]

    for r in webhook.accepted("/hook"):
        ts = r["headers"]["x-spoolgate-timestamp"]
        want = hmac.new(SECRET.encode(), f"{ts}.{r['body']}".encode(), hashlib.sha256).hexdigest()
        assert r["headers"]["x-spoolgate-signature"] == f"sha256={want}"
        assert r["headers"]["content-type"] == "application/json"
    down = [e for e in generic_events(webhook) if e["event"] == "upstream_down"][0]
    assert down["change"] == "raised" and down["host"] == "relay.test" and down["version"] == 1
    assert down["fields"]["state"] in ("failing", "down") and "refused" in down["fields"]["last_error"].lower()
    ntfy = webhook.accepted("/spoolgate-alerts")[0]
    # The ntfy topic asked for queue_stale only: the upstream's trouble is not there.
    assert len(webhook.accepted("/spoolgate-alerts")) == 1
    assert "oldest queued message" in ntfy["headers"]["title"] and "queue_stale" in ntfy["headers"]["tags"]
    assert ntfy["headers"]["content-type"].startswith("text/plain") and ntfy["headers"]["priority"] == "high"

    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings["upstreams"] = [upstream_config(sink, pki, workdir)]
    d.write_config(settings)
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reload")
    subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], check=True, capture_output=True, timeout=30)
    sink.wait_messages(1)
    wait_for(lambda: changes(generic_events(webhook), "upstream_down") == ["raised", "cleared"] and
             changes(generic_events(webhook), "queue_stale") == ["raised", "cleared"],
             timeout=30, what="both cleared")
    wait_for(lambda: len(webhook.accepted("/spoolgate-alerts")) == 2, what="the ntfy topic told it cleared")
    # Nothing more is on its way: none pending, none active; each once.
    wait_for(lambda: (lambda doc: doc["notifications"]["pending"] == 0 and doc["alerts"] == [])(
        json.loads(get(d, "/status.json")[2])), what="nothing pending")
    events = generic_events(webhook)
    assert changes(events, "upstream_down") == ["raised", "cleared"], events
    assert changes(events, "queue_stale") == ["raised", "cleared"], events
    assert len({e["id"] for e in events}) == len(events)
    assert [r["status"] for r in webhook.requests()] == [200] * len(webhook.requests())
    no_content_or_secret(webhook, PASSWORD, SECRET)
    d.stop()


def test_a_failed_message_reaches_each_format_and_a_failing_receiver_gets_it_again(daemon_factory, sink_factory,
                                                                                  webhook, pki, workdir):
    """A message refused for good (550): one notification with its sender,
    recipients and reason, never its content, to a generic receiver and in
    the Teams, Slack, Google Chat and ntfy formats. The generic receiver
    answers 503, then 429 with Retry-After, then takes it: the same
    notification (same id) three times, accepted once, the others told
    once each."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)], metrics={"listen": "127.0.0.1:0"})
    settings["notify"] = [target(webhook, pki, "/hook", events=["message_failed"]),
                          target(webhook, pki, "/teams", "teams"), target(webhook, pki, "/slack", "slack"),
                          target(webhook, pki, "/chat", "google-chat"), target(webhook, pki, "/ntfy", "ntfy")]
    webhook.script({"path": "/hook", "status": 503}, {"path": "/hook", "status": 429, "retry_after": "1"})
    d = daemon_factory(settings)
    send(d, rcpts=("gone+550@example.com",), body=CONTENT, sender="scanner@lan.example")
    wait_for(lambda: generic_events(webhook), timeout=30, what="the generic receiver took it")
    tries = [r for r in webhook.requests() if r["path"] == "/hook"]
    assert [r["status"] for r in tries] == [503, 429, 200], tries
    assert len({json.loads(r["body"])["id"] for r in tries}) == 1
    assert d.log().count("event=notify_retry") >= 2
    e = generic_events(webhook)[0]
    assert e["event"] == "message_failed" and e["change"] == "raised"
    assert e["fields"]["sender"] == "scanner@lan.example"
    assert e["fields"]["recipients"] == "gone+550@example.com" and "550" in e["fields"]["reason"]
    for path in ("/teams", "/slack", "/chat", "/ntfy"):
        wait_for(lambda: webhook.accepted(path), what=f"{path} told")
    # Each as its service takes it.
    teams = json.loads(webhook.accepted("/teams")[0]["body"])
    card = teams["attachments"][0]
    assert teams["type"] == "message" and card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert "scanner@lan.example" in json.dumps(card["content"]["body"])
    assert "scanner@lan.example" in json.loads(webhook.accepted("/slack")[0]["body"])["text"]
    assert "scanner@lan.example" in json.loads(webhook.accepted("/chat")[0]["body"])["text"]
    ntfy = webhook.accepted("/ntfy")[0]
    assert "scanner@lan.example" in ntfy["headers"]["title"] and "550" in ntfy["body"]
    # One each: the failure is a one-off (reports are about failures, and
    # the bounce to the scanner went out through the sink).
    for path in ("/hook", "/teams", "/slack", "/chat", "/ntfy"):
        assert len(webhook.accepted(path)) == 1, path
    no_content_or_secret(webhook, PASSWORD)
    metrics = get(d, "/metrics")[2]
    assert "spoolgate_notifications_sent_total 5" in metrics and "spoolgate_notifications_pending 0" in metrics
    d.stop()


def test_pending_notifications_survive_kill_9_and_a_crash_loop_is_told(daemon_factory, sink_factory, webhook, pki,
                                                                      workdir):
    """The receiver is down when a message fails for good: the notification
    waits in <spool>/notify/. kill -9, a start, kill -9 again, a start:
    notify_thresholds.crash_loop is 1 here, so two unclean stops within an
    hour are a crash loop. When the receiver is back, the failure's
    notification (the same id, made before the first kill) and the crash
    loop's (once) arrive, and the outbox is empty."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)], metrics={"listen": "127.0.0.1:0"})
    settings["notify"] = [target(webhook, pki, "/hook")]
    settings["notify_thresholds"] = {"crash_loop": 1}
    webhook.down()
    d = daemon_factory(settings)
    send(d, rcpts=("gone+550@example.com",), body=CONTENT)
    wait_for(lambda: webhook.requests(), timeout=30, what="the receiver tried")
    outbox = d.spool / "notify"
    kept = [p.name for p in outbox.glob("*.json")]
    assert len(kept) == 1, kept
    first_id = json.loads(webhook.requests()[0]["body"])["id"]
    d.kill9()
    d.start()
    wait_for(lambda: "event=notify_pending notifications=1" in d.log(), what="read back after the restart")
    d.kill9()
    d.start()
    assert "event=unclean_stops within_the_last_hour=2" in d.log()
    webhook.down(False)
    wait_for(lambda: {"message_failed", "crash_loop"} <= {e["event"] for e in generic_events(webhook)},
             timeout=60, what="both delivered")
    events = generic_events(webhook)
    # At least once, and always as the notification made before the first
    # kill: a request the receiver had already taken when the daemon was
    # killed (its answer lost with the daemon) comes again after the
    # restart with the same id, for the receiver to drop.
    assert {e["id"] for e in events if e["event"] == "message_failed"} == {first_id}
    assert changes(events, "crash_loop") == ["raised"]
    crash = [e for e in events if e["event"] == "crash_loop"][0]
    assert crash["fields"]["unclean_stops"] == "2"
    wait_for(lambda: not list(outbox.glob("*.json")), what="the outbox emptied")
    no_content_or_secret(webhook, PASSWORD)
    d.stop()
    # A clean stop is not counted: the next start sees none new, and the
    # crash loop (still within its hour) is the one raised before, kept in
    # the spool: not raised again.
    d.start()
    assert "within_the_last_hour=2" in d.log()
    alerts = json.loads(get(d, "/status.json")[2])["alerts"]
    assert [(a["event"], a["since"]) for a in alerts] == [("crash_loop", crash["since"])], alerts
    d.stop()
    assert changes(generic_events(webhook), "crash_loop") == ["raised"]


def test_an_expiring_certificate_a_full_spool_and_a_silent_device_are_told(daemon_factory, webhook, pki, workdir):
    """The listener's certificate expires within notify_thresholds.expiry
    (3650d here: any certificate does); the spool holds spool.max_messages
    (1) so new mail gets 452; the UPS, expected every 2 s, goes silent.
    Each is raised once; deleting the message clears the full spool once."""
    cert, key = pki.leaf("relay")
    settings = metrics_settings([{"url": f"smtps://localhost:{free_port()}", "ca_file": pki.ca_file}])
    settings["listen"] = ["127.0.0.1:0", {"address": "127.0.0.1:0", "tls": "implicit", "cert_file": cert,
                                          "key_file": key}]
    settings["spool"] = {"max_messages": 1}
    settings["expect"] = [{"sender": "ups@lan.example", "every": "2s"}]
    settings["notify"] = [target(webhook, pki, "/hook")]
    settings["notify_thresholds"] = {"expiry": "3650d"}
    d = daemon_factory(settings)
    send(d, sender="ups@lan.example", body=CONTENT)
    wait_for(lambda: {"expiring", "spool_full", "heartbeat"} <= {e["event"] for e in generic_events(webhook)},
             timeout=30, what="the three raised")
    events = generic_events(webhook)
    expiring = [e for e in events if e["event"] == "expiring"]
    assert [e["key"] for e in expiring] == [f"listen {d.addresses[1]}"], expiring
    assert "not_after" in expiring[0]["fields"]
    beat = [e for e in events if e["event"] == "heartbeat"][0]
    assert beat["key"] == "ups@lan.example" and beat["fields"]["every"] == "2s"
    msg = d.queue()[0]["id"]
    out = subprocess.run([BIN, "queue", "delete", msg, "-c", str(d.config)], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: changes(generic_events(webhook), "spool_full") == ["raised", "cleared"], what="spool cleared")
    events = generic_events(webhook)
    assert changes(events, "expiring") == ["raised"] and changes(events, "heartbeat") == ["raised"]
    no_content_or_secret(webhook)
    d.stop()
