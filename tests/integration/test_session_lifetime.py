# SPDX-License-Identifier: MIT
"""Upstream session lifetime against a slow disk: one disk job at a time per
session, stage timers that do not run while the disk works, and every disk
completion going back through the session's one event pump.

The disk is slowed with strace fault injection (every fsync and pread64 of
the daemon delayed), which is how a sick or overloaded disk looks to it."""

from conftest import daemon_upstream_settings, free_port, upstream_config, wait_for
from conftest import USER, PASSWORD, send

# LeakSanitizer cannot run under ptrace; ASan's other checks (use after
# free) still do.
NO_LSAN = {"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1"}


def slow_disk(delay_us, calls=("fsync", "pread64")):
    prefix = ["strace", "-f", "-o", "/dev/null", "-e", "trace=" + ",".join(calls)]
    for c in calls:
        prefix += ["-e", f"inject={c}:delay_enter={delay_us}"]
    return prefix


def one_second_timeouts():
    return {"connect": "1s", "greeting": "1s", "mail": "1s", "rcpt": "1s", "data": "1s", "block": "1s", "done": "1s"}


def test_stage_timeouts_shorter_than_the_disk_never_start_a_second_disk_job(daemon_factory, sink_factory, pki,
                                                                            workdir):
    """Stage timeouts of 1 s, every fsync and pread64 delayed 2 s: loading a
    message, reading its content and recording its outcome each take longer
    than any stage timeout. Before, a timeout during the load or the outcome
    write started a second job beside the first (a use after free under ASan,
    two writers of one state file, a removed message's state written again);
    now the timers wait for the disk, and every message is delivered once."""
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    settings["delivery"]["timeouts"] = one_second_timeouts()
    settings["delivery"]["idle_hold"] = "0s"
    d = daemon_factory(settings, start=False)
    d.env = NO_LSAN
    d.prefix = slow_disk(2_000_000)
    d.start()
    for i in range(3):
        send(d, rcpts=(f"r{i}@example.com",))
    sink.wait_messages(3, timeout=120)
    wait_for(lambda: not d.queued_files(), timeout=60, what="queue empty")
    d.stop()
    assert sorted(m["rcpt_tos"][0] for m in sink.messages()) == ["r0@example.com", "r1@example.com",
                                                                 "r2@example.com"]
    log = d.log()
    assert "timeout waiting" not in log, log
    assert "event=panic" not in log and "ERROR: AddressSanitizer" not in log
    # Nothing left behind: no orphan state in queue/ or tmp/, nothing failed.
    assert d.queued_files() == [] and d.tmp_files() == []
    assert list((d.spool / "failed").iterdir()) == []
    # And a restart finds nothing to quarantine.
    d.prefix = []
    d.start()
    assert "moved_corrupt=0" in d.log()




def test_a_server_closing_while_a_chunk_is_read_is_noticed_at_once(daemon_factory, sink_factory, pki, workdir):
    """The server closes in the middle of a 2 MB body while the next 256 KiB
    chunk is being read from a slow disk (pread64 delayed 0.5 s). The close
    must be acted on when the read returns: the message is deferred for the
    lost connection and retried, not streamed into a dead socket until the
    data-block timer (here 120 s) runs out."""
    f = sink_factory(name="fake-close-mid-body", scenario="close-mid-body", leaf="fake")
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["timeouts"].update(block="120s", done="120s")
    d = daemon_factory(settings, start=False)
    d.env = NO_LSAN
    d.prefix = slow_disk(500_000, calls=("pread64",))
    d.start()
    line = b"0123456789" * 9 + b"\r\n"
    send(d, body=b"Subject: big\r\n\r\n" + line * (2 * 1024 * 1024 // len(line)))
    wait_for(lambda: "CLOSE-MID-BODY tls=yes" in f.events(), timeout=30, what="the server's close")
    # Well inside the 120 s block timeout: the deferral names the lost
    # connection, and the retry delivers the message.
    wait_for(lambda: "event=deferred" in d.log(), timeout=30, what="the deferral")
    deferral = next(l for l in d.log().splitlines() if "event=deferred" in l)
    assert "connection lost" in deferral or "reset" in deferral, deferral
    [m] = f.wait_messages(1, timeout=60)
    assert m["content"].endswith(line)


def test_reloads_during_deferrals(daemon_factory, blackhole, workdir):
    """SIGHUP replaces the retry policy on the loop thread while sessions
    defer messages (an upstream that refuses every connection), their state
    writes slowed (fsync delayed 0.3 s) so that reloads land while a
    deferral is on the disk. The due time of a deferral used to be computed
    on a worker thread from that policy: a data race, which the
    ThreadSanitizer build (scripts/check --tsan) reports and fails on.
    Every message stays queued and accounted for, with its attempts
    counted."""
    import os
    import signal
    closed_port = free_port()  # nothing listens: every connect is refused at once
    settings = daemon_upstream_settings([{"url": f"smtp://127.0.0.1:{closed_port}", "insecure_plaintext": True}])
    settings["delivery"]["retry"] = {"first": "1s", "max": "1s", "factor": 1, "jitter": 0.5}
    d = daemon_factory(settings, start=False)
    d.env = NO_LSAN
    d.prefix = slow_disk(300_000, calls=("fsync",))
    d.start()
    for i in range(5):
        send(d, rcpts=(f"r{i}@example.com",))
    for n in range(1, 41):
        os.kill(d.pid, signal.SIGHUP)
        wait_for(lambda: d.log().count("event=reloaded") >= n, what=f"reload {n}")
    wait_for(lambda: all(e["attempts"] >= 2 for e in d.queue()), timeout=60, what="every message deferred twice")
    assert len(d.queue()) == 5
