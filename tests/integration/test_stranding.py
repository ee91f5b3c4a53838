# SPDX-License-Identifier: MIT
"""The spool never strands a message: an entry that cannot be read now is
retried with backoff, a corrupt one is quarantined at once with its reason,
and delivery.max_lifetime applies to every deferral, also to mail that only
ever waits behind a site backoff."""

from conftest import daemon_upstream_settings, free_port, upstream_config, wait_for
from conftest import USER, PASSWORD, send


def test_an_unreadable_entry_is_deferred_and_delivered_later(daemon_factory, sink_factory, pki, workdir, faultfs):
    """The first two pread calls on spool files fail with EIO (faultfs):
    the first load of the message fails. It used to be dropped from the
    scheduler (still in queue/, never retried until a restart); now it is
    deferred with backoff and delivered at the next attempt."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir)]), start=False)
    d.env = faultfs(d, pread_eio=2)
    d.start()
    send(d)
    [m] = sink.wait_messages(1)
    wait_for(lambda: not d.queued_files(), what="queue empty")
    log = d.log()
    assert "event=spool_read" in log and "action=\"deferred; the entry stays queued\"" in log, log
    assert list((d.spool / "failed").iterdir()) == []


def test_a_corrupt_entry_is_quarantined_at_once(daemon_factory, workdir):
    """A queued message whose file is damaged while the daemon runs (here:
    truncated) is moved to failed/ with its reason at its next attempt, not
    kept in queue/ unscheduled."""
    settings = daemon_upstream_settings([{"url": f"smtp://127.0.0.1:{free_port()}", "insecure_plaintext": True}])
    d = daemon_factory(settings)
    send(d)
    [entry] = wait_for(lambda: [e for e in d.queue() if e["attempts"] >= 1], what="deferred once")
    path = d.spool / "queue" / entry["id"]
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    # The daemon's own line comes after the move (the reason file is written
    # first, so waiting for it would race the log).
    wait_for(lambda: "event=spool_corrupt" in d.log(), what="quarantined")
    reason = (d.spool / "failed" / (entry["id"] + ".reason")).read_text()
    assert reason.startswith("corrupt: ") and "size mismatch" in reason, reason
    assert not path.exists()
    assert d.queue() == []


def test_lifetime_expires_mail_that_never_gets_past_site_trouble(daemon_factory, sink_factory, pki, workdir):
    """A pin mismatch fails every connection before any transaction; the
    lifetime check used to run only after a transaction outcome, so the
    message waited forever. With max_lifetime 2 s it is failed with a 4.4.7
    report to the sender."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    up = upstream_config(sink, pki, workdir)
    up["pins"] = [pki.spki_pin(pki.other_root)]
    settings = daemon_upstream_settings([up])
    settings["delivery"]["max_lifetime"] = "2s"
    settings["delivery"]["retry"] = {"first": "1s", "max": "1s", "factor": 1, "jitter": 0}
    d = daemon_factory(settings)
    send(d, sender="dev@lan")
    [entry] = wait_for(lambda: d.queue(), what="queued")
    reason_file = d.spool / "failed" / (entry["id"] + ".reason")
    wait_for(lambda: any("event=failed " in l and entry["id"] in l for l in d.log().splitlines()), timeout=30,
             what="expired")
    assert "delivery time expired" in reason_file.read_text()
    assert "certificate verification failed" in reason_file.read_text()
    line = wait_for(lambda: [l for l in d.log().splitlines() if "event=bounce_queued" in l and entry["id"] in l],
                    what="the report")[0]
    report_id = line.split("msg=")[1].split()[0]
    report = next(p for p in [d.spool / "queue" / report_id, d.spool / "failed" / report_id] if p.exists())
    text = report.read_bytes().decode(errors="replace")
    assert "Status: 4.4.7" in text and "Final-Recipient: rfc822; ops@example.com" in text
    assert sink.messages() == []


def test_lifetime_expires_mail_waiting_behind_a_site_backoff(daemon_factory, workdir):
    """A long site backoff (the upstream refuses connections; retries every
    hour) keeps messages from ever being taken by a session: they expire
    all the same, without a session."""
    settings = daemon_upstream_settings([{"url": f"smtp://127.0.0.1:{free_port()}", "insecure_plaintext": True}])
    settings["delivery"]["max_lifetime"] = "3s"
    settings["delivery"]["retry"] = {"first": "1h", "max": "1h", "factor": 1, "jitter": 0}
    settings["delivery"]["max_connections"] = 1
    d = daemon_factory(settings)
    for i in range(3):
        send(d, rcpts=(f"r{i}@example.com",), sender="")
    # The daemon's own lines (a .reason file exists before it is written).
    wait_for(lambda: d.log().count("event=failed ") == 3, timeout=30, what="all three expired")
    assert d.queue() == []
    reasons = [p.read_text() for p in (d.spool / "failed").glob("*.reason")]
    assert all("delivery time expired" in r for r in reasons), reasons


def test_an_envelope_too_big_for_the_spool_record_is_refused_at_rcpt(daemon_factory):
    """4,800 recipients of 250 octets each would make a 1.2 MB record
    header; before, every RCPT got 250, the message got 250, and the record
    was unreadable (the reader stopped at 64 KiB): listed as corrupt and
    quarantined at the next start. Now the RCPT that would overflow the
    record gets 452 4.5.3 (the client sends the rest in another
    transaction) and what was accepted is queued, readable, and survives a
    restart."""
    from test_inbound import queued_id
    d = daemon_factory({"limits": {"max_recipients": 10000}})
    c = d.connect()
    assert c.code() == 220
    c.cmd("EHLO dev")
    domain = ".".join(["d" * 58] * 3) + ".example"  # a 251-octet address: the path fits 256
    rcpts = [f"{i:064d}@{domain}" for i in range(4800)]  # the refused ones stay under the overshoot allowance
    c.send(b"MAIL FROM:<a@example.com>\r\n" + b"".join(f"RCPT TO:<{r}>\r\n".encode() for r in rcpts))
    assert c.reply() == ["250 2.1.0 Ok"]
    replies = [c.reply()[0] for _ in rcpts]
    accepted = replies.count("250 2.1.5 Ok")
    assert 1000 < accepted < 4800
    assert replies[:accepted] == ["250 2.1.5 Ok"] * accepted
    assert set(replies[accepted:]) == {"452 4.5.3 Error: too many recipients (the envelope is full)"}
    assert c.cmd("DATA")[0].startswith("354")
    c.send(b"Subject: many\r\n\r\nbody\r\n.\r\n")
    msg_id = queued_id(c.reply()[0])
    c.cmd("QUIT")
    [entry] = d.queue()
    assert entry["id"] == msg_id and entry["recipients"] == rcpts[:accepted]
    d.stop()
    d.start()
    assert "moved_corrupt=0" in d.log() and "queued=1" in d.log()
    assert [e["id"] for e in d.queue()] == [msg_id]


def test_an_entry_unreadable_at_recovery_is_kept_and_delivered(daemon_factory, sink_factory, pki, workdir, faultfs):
    """Recovery moved every entry it could not read to failed/ as corrupt,
    also for a passing EIO: an acknowledged message quarantined for good
    (the kill -9 soak with EIO injection found it). Now it stays queued and
    is read again when due."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    d = daemon_factory()  # store-only first
    send(d)
    [entry] = d.queue()
    d.stop()
    d.write_config(daemon_upstream_settings([upstream_config(sink, pki, workdir)]))
    d.env = faultfs(d, pread_eio=1)  # the recovery's read of it fails once
    d.start()
    log = d.log()
    assert "event=recover_unreadable msg=" + entry["id"] in log and "moved_corrupt=0" in log and "unreadable=1" in log
    [m] = sink.wait_messages(1)
    wait_for(lambda: d.queue() == [], what="delivered")
    assert list((d.spool / "failed").iterdir()) == []


def test_a_deferral_whose_state_cannot_be_written_keeps_its_backoff(daemon_factory, workdir, faultfs):
    """A full disk fails the state write of a deferral: it used to be retried
    a minute later whatever the backoff said (every minute for a provider
    that is down for hours). Now the backoff holds (here an hour)."""
    import datetime
    import re
    settings = daemon_upstream_settings([{"url": f"smtp://127.0.0.1:{free_port()}", "insecure_plaintext": True}])
    settings["delivery"]["retry"] = {"first": "1h", "max": "1h", "factor": 1, "jitter": 0}
    d = daemon_factory(settings, start=False)
    d.env = faultfs(d, state_enospc=1)
    d.start()
    send(d)
    line = wait_for(lambda: [l for l in d.log().splitlines() if "event=deferred" in l], what="the deferral")[0]
    assert "event=spool_update" in d.log() and "No space left on device" in d.log()
    nxt = datetime.datetime.fromisoformat(re.search(r"next=(\S+)", line).group(1).replace("Z", "+00:00"))
    ahead = nxt - datetime.datetime.now(datetime.timezone.utc)
    assert ahead > datetime.timedelta(minutes=50), line
