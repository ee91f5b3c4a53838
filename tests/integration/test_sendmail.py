# SPDX-License-Identifier: MIT
"""spoolgate sendmail: what cron jobs and scripts call."""
import subprocess

from conftest import BIN, daemon_upstream_settings, upstream_config, wait_for
from conftest import USER, PASSWORD


def sendmail(d, *args, stdin):
    return subprocess.run([BIN, "sendmail", "-c", str(d.config), *args], input=stdin, capture_output=True,
                          timeout=30)


def test_sendmail_t_delivers_through_the_running_daemon(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
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


def stopped_daemon(daemon_factory, settings=None):
    """A daemon that ran once (it made its spool, owned by its user) and
    stopped."""
    d = daemon_factory(settings or {})
    d.stop()
    return d


def test_sendmail_without_a_daemon_queues_durably(daemon_factory):
    # The spool's owner (root here, like the daemon) may queue directly.
    d = stopped_daemon(daemon_factory)
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
    d = stopped_daemon(daemon_factory)
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
    sink = sink_factory(tls="implicit", user=USER, password=PASSWORD)
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


def as_nobody():
    import pwd
    nobody = pwd.getpwnam("nobody")
    return nobody, ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]


def test_sendmail_works_for_root_and_any_user_with_the_daemon_owning_the_spool(daemon_factory, workdir):
    """The daemon runs as nobody (as it runs as spoolgate under systemd).
    sendmail from root (the usual cron caller) used to write a 0600 root
    file the daemon could not read (quarantined as corrupt at the next
    start, after sendmail had said 0), and from an ordinary user it queued
    into ./var/spool of the current directory (lost). Now both hand the
    message to the daemon over the submission socket; the daemon writes
    every spool file. With the daemon stopped, root (not the spool's owner)
    gets 75 and nothing is left behind; the owner may still queue directly."""
    import os
    import stat
    nobody, prefix = as_nobody()
    os.chmod(workdir, 0o755)
    d = daemon_factory(start=False)
    os.chmod(d.dir, 0o755)
    run = d.dir / "run"
    for p in (d.spool, run):
        p.mkdir()
        os.chown(p, nobody.pw_uid, nobody.pw_gid)
    d.write_config({"submission_socket": str(run / "submit.sock")})
    d.prefix = prefix
    d.env = {"ASAN_OPTIONS": "detect_leaks=0"}
    d.start()
    assert "event=submission_listening" in d.log()
    assert stat.S_IMODE(os.stat(run / "submit.sock").st_mode) == 0o666
    for who, cmd_prefix in (("root", []), ("nobody", prefix)):
        out = subprocess.run(cmd_prefix + [BIN, "sendmail", "-c", str(d.config), "ops@example.com"],
                             input=f"Subject: from {who}\n\nbody\n".encode(), capture_output=True, timeout=30,
                             cwd="/tmp")
        assert out.returncode == 0, (who, out.stderr)
    entries = wait_for(lambda: len(d.queue()) == 2 and d.queue(), what="both queued")
    for e in entries:
        st = os.stat(d.spool / "queue" / e["id"])
        assert st.st_uid == nobody.pw_uid, e
        assert d.content(e["id"]).endswith(b"\r\n\r\nbody\r\n")
    assert not os.path.exists("/tmp/var")
    os.kill(d.pid, __import__("signal").SIGTERM)
    assert d.proc.wait(timeout=60) == 0
    d.log_file.close()
    # No daemon: root is not the spool's owner.
    out = sendmail(d, "ops@example.com", stdin=b"Subject: nobody home\n\nbody\n")
    assert out.returncode == 75, out
    assert b"no daemon takes mail" in out.stderr and b"the message was not queued" in out.stderr
    assert len(list((d.spool / "queue").iterdir())) == 2 and list((d.spool / "tmp").iterdir()) == []
    # An ordinary user with no configuration at all, from /tmp: nothing is
    # queued anywhere (the default spool is not theirs), exit 75.
    env = {k: v for k, v in os.environ.items() if k != "SPOOLGATE_CONFIG"}
    out = subprocess.run(prefix + [BIN, "sendmail", "ops@example.com"], input=b"Subject: x\n\nbody\n",
                         capture_output=True, timeout=30, cwd="/tmp", env=env)
    assert out.returncode == 75, out
    assert not os.path.exists("/tmp/var")
    # The next start finds both messages readable.
    d.start()
    assert "moved_corrupt=0" in d.log() and "queued=2" in d.log()
