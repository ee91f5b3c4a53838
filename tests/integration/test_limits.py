# SPDX-License-Identifier: MIT
"""Provider limits (issue 16): spoolgate paces itself under an upstream's
limits (its provider's profile, or its own figures) so that the provider
never has to refuse: sessions at once, messages per minute, recipients per
rolling day (kept across a restart). Mail over a limit is held until the
window opens, not deferred with an error, never bounced; a quota reply the
provider sends anyway holds the upstream's mail the same way.

The fake provider (smtp_sink.py --max-sessions/--per-minute/--rcpts-per-day)
enforces the limits as Microsoft 365 does and records each refusal; the
tests check there was none, and the pace, by the fake's own timestamps."""
import re
import smtplib
import subprocess

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for

PW = "s3cret"


def m365(sink, pki, workdir, **limits):
    u = dict(upstream_config(sink, pki, workdir, user="relay@example.com", password=PW), name="m365",
             provider="microsoft365")
    if limits:
        u["limits"] = limits
    return u


def refusals(sink):
    return [e for e in sink.events() if e.startswith("REFUSED")]


def send_many(d, n, first=0):
    with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
        for i in range(first, first + n):
            s.sendmail("dev@lan.example", [f"ops{i}@example.com"], f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())


def test_300_messages_through_the_microsoft365_profile_without_a_refusal(daemon_factory, sink_factory, pki, workdir):
    """Three sessions at most (the profile's), though delivery.max_connections
    allows eight; the per-minute figure is raised on both sides so that the
    run takes seconds (the next test keeps the profile's 30)."""
    sink = sink_factory(name="m365", user="relay@example.com", password=PW, max_sessions=3, per_minute=1000,
                        rcpts_per_day=10000)
    settings = daemon_upstream_settings([m365(sink, pki, workdir, messages_per_minute=1000)])
    settings["delivery"]["max_connections"] = 8
    d = daemon_factory(settings)
    r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
    assert re.search(r"limits:\n\s+max_connections: 3\n", r.stdout), r.stdout  # the profile's
    assert "recipients_per_day: 10000" in r.stdout and "messages_per_minute: 1000" in r.stdout, r.stdout
    for batch in range(6):
        send_many(d, 50, first=batch * 50)
    sink.wait_messages(300, timeout=120)
    assert refusals(sink) == []
    wait_for(lambda: not d.queue(), what="an empty queue")
    d.stop()


def test_the_profile_s_30_a_minute_is_kept_by_the_provider_s_own_clock(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(name="m365", user="relay@example.com", password=PW, max_sessions=3, per_minute=30)
    d = daemon_factory(daemon_upstream_settings([m365(sink, pki, workdir)]))
    send_many(d, 35)
    sink.wait_messages(30)
    # The other five wait, held (not deferred), with the limit and the time
    # the window opens.
    held = wait_for(lambda: [m for m in d.queue() if m["state"] == "held"] or None, what="held messages")
    assert held[0]["held_reason"] == "m365: messages_per_minute 30 reached", held
    assert held[0]["attempts"] == 0 and held[0]["held_until"], held
    text = subprocess.run([BIN, "queue", "list", "-c", str(d.config)], capture_output=True, text=True).stdout
    assert " held " in text and "held until" in text, text
    assert re.search(r"event=upstream_paced upstream=\S+ reason=\"messages_per_minute 30 reached\"", d.log())
    sink.wait_messages(35, timeout=150)
    assert refusals(sink) == []
    times = sorted(m["time"] for m in sink.messages())
    # No 60 seconds of the provider's clock saw more than 30.
    assert all(times[i + 30] - times[i] >= 59.5 for i in range(len(times) - 30)), times
    wait_for(lambda: not d.queue(), what="an empty queue")
    d.stop()


def test_recipients_per_day_survive_a_restart(daemon_factory, sink_factory, pki, workdir):
    """Also: the limits, their use and the held mail in /metrics and in
    `spoolgate health`."""
    from test_observability import get, metrics_settings, samples
    sink = sink_factory(name="m365", user="relay@example.com", password=PW, rcpts_per_day=20)
    up = m365(sink, pki, workdir, recipients_per_day=20)
    d = daemon_factory(metrics_settings([up]))
    send_many(d, 15)
    sink.wait_messages(15)
    wait_for(lambda: not d.queue(), what="an empty queue")
    d.stop()
    assert (d.spool / "pacing" / "m365").read_text().startswith("SPOOLGATE-PACING 1\n")
    d.start()
    send_many(d, 10, first=15)
    sink.wait_messages(20)
    held = wait_for(lambda: len([m for m in d.queue() if m["state"] == "held"]) == 5 and d.queue(),
                    what="five held")
    assert {m["held_reason"] for m in held} == {"m365: recipients_per_day 20 reached"}, held
    assert len(sink.messages()) == 20 and refusals(sink) == []
    assert not list((d.spool / "failed").iterdir())
    m = samples(get(d, "/metrics")[2])
    url = up["url"]
    assert m[f'spoolgate_upstream_limit{{upstream="{url}",limit="recipients_per_day"}}'] == 20, m
    assert m[f'spoolgate_upstream_limit_used{{upstream="{url}",limit="recipients_per_day"}}'] == 20, m
    assert m[f'spoolgate_upstream_limit{{upstream="{url}",limit="max_connections"}}'] == 3, m  # the profile's
    assert m[f'spoolgate_upstream_held_messages{{upstream="{url}"}}'] == 5, m
    r = subprocess.run([BIN, "health", "-c", str(d.config)], capture_output=True, text=True)
    assert r.returncode == 0 and f"5 held by the limits of {url}" in r.stdout, r.stdout
    d.stop()


def test_a_quota_reply_holds_the_upstream_s_mail_and_bounces_nothing(daemon_factory, sink_factory, pki, workdir):
    """The provider's quota is smaller than the profile says (another client
    uses the mailbox): its 554 5.2.0 SubmissionQuotaExceeded holds the mail
    until the window opens; nothing fails, nothing is bounced."""
    sink = sink_factory(name="m365", user="relay@example.com", password=PW, rcpts_per_day=3)
    d = daemon_factory(daemon_upstream_settings([m365(sink, pki, workdir)]))
    send_many(d, 5)
    sink.wait_messages(3)
    wait_for(lambda: "event=upstream_quota" in d.log(), what="the quota reply")
    assert re.search(r"event=upstream_quota upstream=\S+ reason=\"554 5.2.0 STOREDRV.Submission.Exception:"
                     r"SubmissionQuotaExceededException", d.log()), d.log()
    queued = wait_for(lambda: len([m for m in d.queue() if m["state"] == "held"]) == 2 and d.queue(),
                      what="two held")
    assert all(m["held_reason"].startswith("m365: quota reply: 554 5.2.0") for m in queued), queued
    assert all(m["sender"] == "dev@lan.example" for m in queued)  # no report to anyone
    assert not list((d.spool / "failed").iterdir())
    assert "event=bounce_queued" not in d.log() and "event=failed" not in d.log()
    d.stop()


def test_a_message_larger_than_its_upstreams_take_is_refused_at_rcpt_or_data(daemon_factory, sink_factory, pki,
                                                                              workdir):
    """upstreams[].limits.max_message_size: a device hears 552 at once (RCPT
    with SIZE, or the end of DATA) instead of a bounce later; a recipient
    routed to an upstream without that limit is not held to it."""
    small = sink_factory(name="small", user="relay@example.com", password=PW)
    big = sink_factory(name="big", user="relay@example.com", password=PW)
    ups = [dict(m365(small, pki, workdir, max_message_size="2KiB"), name="small"),
           dict(upstream_config(big, pki, workdir, user="relay@example.com", password=PW), name="big")]
    routes = [{"recipient_domain": "big.example", "upstream": "big"}, {"upstream": "small"}]
    d = daemon_factory(daemon_upstream_settings(ups, routes=routes))
    body = b"Subject: big\r\n\r\n" + b"x" * 70 + b"\r\n"
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("printer")
        assert s.mail("dev@lan.example", ["SIZE=5000"])[0] == 250
        code, msg = s.rcpt("ops@example.com")
        assert code == 552 and b"5.3.4 <ops@example.com>: Message size exceeds what the upstream" in msg, msg
        assert s.rcpt("ops@big.example")[0] == 250
        assert s.data(body * 60)[0] == 250  # only the big one's recipient: no limit
        assert s.mail("dev@lan.example")[0] == 250
        assert s.rcpt("ops@example.com")[0] == 250
        code, msg = s.data(body * 60)
        assert code == 552 and b"exceeds what the upstream of a recipient takes (2048 bytes)" in msg, msg
        s.sendmail("dev@lan.example", ["ops@example.com"], body)
    small.wait_messages(1)
    big.wait_messages(1)
    assert len(d.queue()) == 0 or wait_for(lambda: not d.queue(), what="an empty queue")
    d.stop()


def test_queued_mail_larger_than_a_lowered_limit_fails_without_the_upload(daemon_factory, sink_factory, pki,
                                                                         workdir):
    """Mail queued before max_message_size was lowered fails at once with the
    reason (the provider's 552, without sending it), and its report goes out."""
    from conftest import free_port
    sink = sink_factory(name="m365", user="relay@example.com", password=PW)
    up = m365(sink, pki, workdir)
    up["url"] = f"smtps://localhost:{free_port()}"  # down: the message stays queued
    d = daemon_factory(daemon_upstream_settings([up]))
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("dev@lan.example", ["ops@example.com"], b"Subject: big\r\n\r\n" + (b"x" * 78 + b"\r\n") * 50)
    d.stop()
    up = m365(sink, pki, workdir, max_message_size="3KiB")
    d.write_config(daemon_upstream_settings([up]))
    d.start()
    wait_for(lambda: "event=failed" in d.log(), what="the failure")
    assert re.search(r"event=failed .* reason=\"<ops@example.com>: 552 5.3.4 Message size \d+ exceeds the limit of "
                     r"m365 \(3072 bytes", d.log()), d.log()
    report = sink.wait_messages(1)[0]
    assert report["rcpt_tos"] == ["dev@lan.example"] and report["mail_from"] == "<>", report
    assert not any(e.startswith("RCPT ops@") for e in sink.events())
    d.stop()
