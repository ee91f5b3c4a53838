# SPDX-License-Identifier: MIT
"""spoolgate sendmail: what cron jobs and scripts call."""
import subprocess

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for
from test_delivery import USER, PASSWORD


def sendmail(d, *args, stdin):
    return subprocess.run([BIN, "sendmail", "-c", str(d.config), *args], input=stdin, capture_output=True,
                          timeout=30)


def test_sendmail_t_delivers_through_the_running_daemon(daemon_factory, sink_factory, pki, workdir):
    cert, key = pki.leaf("server")
    sink = sink_factory(tls="implicit", cert=cert, key=key, user=USER, password=PASSWORD)
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir)]))
    msg = b"To: ops@example.com\nCc: Dba <dba@example.com>\nBcc: audit@example.com\nSubject: backup\n\nall good\n.\nafter a lone dot\n"
    out = sendmail(d, "-t", "-i", "-f", "cron@host.lan", "-F", "Cron Daemon", stdin=msg)
    assert out.returncode == 0, out.stderr
    [m] = sink.wait_messages(1)
    assert m["mail_from"] == "cron@host.lan"
    assert sorted(m["rcpt_tos"]) == ["audit@example.com", "dba@example.com", "ops@example.com"]
    content = m["content"]
    assert b"Bcc:" not in content
    assert b"From: \"Cron Daemon\" <cron@host.lan>\r\n" in content
    assert content.endswith(b"\r\n\r\nall good\r\n.\r\nafter a lone dot\r\n")
    assert b"Date: " in content and b"Message-ID: <" in content
    wait_for(lambda: d.queue() == [], what="delivered")


def test_sendmail_without_a_daemon_queues_durably(daemon_factory):
    d = daemon_factory(start=False)
    out = sendmail(d, "ops@example.com", stdin=b"Subject: x\n\nbody\n.\nnot part of it\n")
    assert out.returncode == 0, out.stderr
    [entry] = d.queue()
    assert entry["recipients"] == ["ops@example.com"]
    assert d.content(entry["id"]).endswith(b"\r\n\r\nbody\r\n")
    bad = sendmail(d, stdin=b"Subject: no rcpt\n\nx\n")
    assert bad.returncode == 64 and b"no recipients" in bad.stderr


def test_installed_as_sendmail_and_mailq_it_behaves_as_they_do(daemon_factory, tmp_path):
    """`cmake --install --component sendmail` links the traditional names to
    the binary (a plain install does not); invoked by those names it is
    sendmail and mailq."""
    import os
    from pathlib import Path
    build = Path(BIN).parent
    dest = tmp_path / "root"
    env = {**os.environ, "DESTDIR": str(dest)}
    subprocess.run(["cmake", "--install", str(build), "--prefix", "/usr"], check=True, capture_output=True, env=env)
    assert not (dest / "usr/sbin/sendmail").exists()
    subprocess.run(["cmake", "--install", str(build), "--prefix", "/usr", "--component", "sendmail"], check=True,
                   capture_output=True, env=env)
    assert os.readlink(dest / "usr/sbin/sendmail") == "/usr/sbin/spoolgate"
    assert os.readlink(dest / "usr/bin/mailq") == "/usr/sbin/spoolgate"
    # The links point into the install root; run the same names beside the binary under test.
    for name in ("sendmail", "mailq"):
        (tmp_path / name).symlink_to(BIN)
    d = daemon_factory(start=False)
    env = {**os.environ, "SPOOLGATE_CONFIG": str(d.config)}
    sm = subprocess.run([str(tmp_path / "sendmail"), "-oi", "ops@example.com"], input=b"Subject: cron\n\nok\n",
                        capture_output=True, timeout=30, env=env)
    assert sm.returncode == 0, sm.stderr
    mq = subprocess.run([str(tmp_path / "mailq")], capture_output=True, text=True, timeout=30, env=env)
    assert mq.returncode == 0 and "ops@example.com" in mq.stdout


def test_sendmail_applies_the_recipient_limit(daemon_factory):
    """sendmail -t takes recipients from the headers, any number of them:
    the limit SMTP applies at RCPT applies here too, as a clear error that
    queues nothing (before, 101 recipients were queued past max_recipients
    and an envelope too big for the record header was queued unreadable)."""
    d = daemon_factory({"limits": {"max_recipients": 100}}, start=False)
    to = ", ".join(f"r{i}@example.com" for i in range(101))
    out = sendmail(d, "-t", stdin=f"To: {to}\nSubject: many\n\nbody\n".encode())
    assert out.returncode == 64, out
    assert b"too many recipients (101; limits.max_recipients is 100)" in out.stderr
    assert not (d.spool / "queue").exists() or d.queue() == []
    d.write_config({"limits": {"max_recipients": 10000}})
    domain = ".".join(["d" * 58] * 3) + ".example"
    # As arguments: a 1.3 MB To: field would already fail the header bound.
    out = sendmail(d, *[f"{i:064d}@{domain}" for i in range(5000)], stdin=b"Subject: many\n\nbody\n")
    assert out.returncode == 64, out
    assert b"envelope too large" in out.stderr
    assert d.queue() == []


def test_sendmail_canonicalises_like_smtp(daemon_factory, sink_factory, pki, workdir):
    """Invariant 7 for locally submitted mail: CRLF, bare LF and bare CR
    each end a line (the spool and the provider see CRLF only), a lone dot
    line inside the text is dot-stuffed on the wire and arrives intact; a
    NUL is refused, and so is a -F name with a line break (it would add a
    header field). Before, a bare CR went into the spool as it was, a NUL
    was queued and -F could inject "Bcc:"."""
    cert, key = pki.leaf("server")
    sink = sink_factory(tls="implicit", cert=cert, key=key, user=USER, password=PASSWORD)
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir)]))
    msg = b"Subject: mixed\r\n\r\nlf line\ncr line\rcrlf line\r\n.\r\n..two dots\nlast"
    out = sendmail(d, "-i", "ops@example.com", stdin=msg)
    assert out.returncode == 0, out.stderr
    [m] = sink.wait_messages(1)
    content = m["content"]
    assert content.endswith(b"\r\n\r\nlf line\r\ncr line\r\ncrlf line\r\n.\r\n..two dots\r\nlast\r\n"), content
    import re
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", content) is None
    wait_for(lambda: d.queue() == [], what="delivered")
    nul = sendmail(d, "ops@example.com", stdin=b"Subject: x\n\nbad\x00byte\n")
    assert nul.returncode == 65 and b"NUL" in nul.stderr
    inject = sendmail(d, "-F", "Cron\nBcc: victim@example.com", "ops@example.com", stdin=b"Subject: x\n\nbody\n")
    assert inject.returncode == 64 and b"-F must be one line" in inject.stderr
    assert d.queue() == []
