# SPDX-License-Identifier: MIT
"""The inbound half through the real binary with real clients."""
import os
import re
import smtplib
import socket
import stat
import subprocess
import threading

import pytest

from conftest import BIN, SANITIZED, queued_id, send_raw, wait_for

EHLO_LINES = ["250-relay.test", "250-SIZE 36700160", "250-8BITMIME", "250-PIPELINING",
              "250-ENHANCEDSTATUSCODES", "250 SMTPUTF8"]


def strip_trace(content: bytes) -> bytes:
    """Drops the Received: field we add (three lines) so bodies compare exactly."""
    assert content.startswith(b"Received: from ")
    first = content.index(b"\r\n", content.index(b"\r\n", content.index(b"\r\n") + 2) + 2) + 2
    return content[first:]


def test_swaks_message_is_queued_byte_for_byte(daemon):
    body = "line one\nline two\n.leading dot\n"
    out = subprocess.run(["swaks", "--server", f"127.0.0.1:{daemon.port}", "--from", "dev@printer.lan",
                          "--to", "ops@example.com", "--helo", "printer.lan",
                          "--header", "Subject: toner", "--header", "Date: Tue, 17 Nov 2026 10:00:00 +0000",
                          "--header", "Message-Id: <x1@printer.lan>", "--body", body,
                          "--add-header", "X-Test: 1", "--suppress-data"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    msg_id = re.search(r"queued as ([0-9A-Z]{16})", out.stdout).group(1)
    [entry] = daemon.queue()
    assert entry["id"] == msg_id
    assert entry["sender"] == "dev@printer.lan"
    assert entry["recipients"] == ["ops@example.com"]
    assert entry["state"] == "queued"
    assert entry["attempts"] == 0
    content = daemon.content(msg_id)
    assert content.startswith(b"Received: from printer.lan ([127.0.0.1])\r\n\tby relay.test (spoolgate) with ESMTP id "
                              + msg_id.encode() + b";\r\n\t")
    rest = strip_trace(content)
    # swaks sends CRLF lines and stuffs the leading dot; we store the stuffed form.
    assert b"\r\n\r\nline one\r\nline two\r\n..leading dot\r\n" in rest
    assert b"Message-Id: <x1@printer.lan>\r\n" in rest
    assert b"Message-ID:" not in rest  # present already: not added
    assert rest.count(b"Date:") == 1
    assert entry["size"] == len(content)


def test_smtplib_message_gains_date_and_message_id(daemon):
    with smtplib.SMTP("127.0.0.1", daemon.port, local_hostname="cron.lan", timeout=30) as s:
        s.ehlo()
        assert s.has_extn("pipelining") and s.has_extn("smtputf8") and s.has_extn("8bitmime")
        assert int(s.esmtp_features["size"]) == 35 * 1024 * 1024
        refused = s.sendmail("cron@host.lan", ["ops@example.com", "dba@example.com"],
                             b"Subject: backup done\r\n\r\nok\r\n")
        assert refused == {}
    [entry] = daemon.queue()
    assert entry["recipients"] == ["ops@example.com", "dba@example.com"]
    rest = strip_trace(daemon.content(entry["id"]))
    assert re.fullmatch(rb"Subject: backup done\r\nDate: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d \+0000\r\n"
                        rb"Message-ID: <" + entry["id"].encode() + rb"\.\d+@relay\.test>\r\n\r\nok\r\n", rest), rest


def test_curl_upload(daemon, workdir):
    mail = workdir / "mail.txt"
    mail.write_bytes(b"From: curl@host\r\nSubject: via curl\r\n\r\nhello from curl\r\n")
    out = subprocess.run(["curl", "-sS", f"smtp://127.0.0.1:{daemon.port}/curlhost", "--mail-from", "curl@host",
                          "--mail-rcpt", "ops@example.com", "--upload-file", str(mail)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    [entry] = daemon.queue()
    assert strip_trace(daemon.content(entry["id"])).endswith(b"\r\n\r\nhello from curl\r\n")


def test_pipelined_batch_is_answered_in_order(daemon):
    c = daemon.connect()
    assert c.code() == 220
    c.send(b"EHLO dev\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<bad>\r\n"
           b"RCPT TO:<c@example.com>\r\nDATA\r\n")
    assert c.reply() == EHLO_LINES
    assert c.reply() == ["250 2.1.0 Ok"]
    assert c.reply() == ["250 2.1.5 Ok"]
    assert c.reply() == ["501 5.1.3 Bad recipient address syntax"]
    assert c.reply() == ["250 2.1.5 Ok"]
    assert c.reply()[0].startswith("354")
    c.send(b"Subject: p\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    msg_id = queued_id(c.reply()[0])
    assert c.reply() == ["250 2.0.0 Ok"]
    assert c.reply() == ["250 2.0.0 Ok"]
    assert c.reply() == ["221 2.0.0 Bye"]
    assert c.closed()
    [entry] = daemon.queue()
    assert entry["id"] == msg_id
    assert entry["recipients"] == ["b@example.com", "c@example.com"]


def test_hundred_recipients(daemon):
    rcpts = [f"user{i}@example.com" for i in range(100)]
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as s:
        assert s.sendmail("a@example.com", rcpts, b"Subject: many\r\n\r\nx\r\n") == {}
        refused = s.sendmail("a@example.com", rcpts + ["one.too.many@example.com"], b"x\r\n")
        assert refused == {"one.too.many@example.com": (452, b"4.5.3 Error: too many recipients")}
    assert [e["recipients"] for e in daemon.queue()] == [rcpts, rcpts]


def test_recipient_limit_keeps_earlier_recipients(daemon_factory):
    d = daemon_factory({"limits": {"max_recipients": 3}})
    c = d.connect()
    assert c.code() == 220
    c.cmd("EHLO dev")
    c.cmd("MAIL FROM:<a@example.com>")
    codes = [c.cmd(f"RCPT TO:<r{i}@example.com>")[0] for i in range(5)]
    assert codes[:3] == ["250 2.1.5 Ok"] * 3
    assert codes[3:] == ["452 4.5.3 Error: too many recipients"] * 2
    assert c.cmd("DATA")[0].startswith("354")
    c.send(b"x\r\n.\r\n")
    queued_id(c.reply()[0])
    assert d.queue()[0]["recipients"] == ["r0@example.com", "r1@example.com", "r2@example.com"]


def send_big(daemon, total):
    """Sends a message of `total` octets of 92-octet lines as fast as the
    socket takes them; returns its queue id and the line."""
    line = b"0123456789" * 9 + b"\r\n"  # 92 bytes
    chunk = line * 1000
    c = send_raw(daemon, b"Subject: big\r\n\r\n")
    sent = 0
    while sent < total:
        c.send(chunk)
        sent += len(chunk)
    c.send(b".\r\n")
    return queued_id(c.reply()[0]), line


def test_twenty_megabyte_message_streams_with_bounded_memory(daemon):
    total = 20 * 1024 * 1024
    msg_id, line = send_big(daemon, total)
    content = daemon.content(msg_id)
    assert strip_trace(content).startswith(b"Subject: big\r\nDate:")
    assert content.endswith(line)
    assert len(content) > total
    if not SANITIZED:
        peak = daemon.rss_peak_kib()
        assert peak < 30 * 1024, f"peak RSS {peak} KiB"


def test_a_lagging_disk_stops_reading_instead_of_buffering(daemon_factory):
    """Every write(2) of the daemon is delayed (strace fault injection), so
    its spool writes fall far behind a client that sends 24 MB as fast as it
    can: the session must stop reading from its socket (the client blocks in
    send) instead of holding what it cannot write yet."""
    d = daemon_factory(start=False)
    d.env = {"ASAN_OPTIONS": "detect_leaks=0"}  # LeakSanitizer cannot run under ptrace
    d.prefix = ["strace", "-f", "-o", "/dev/null", "-e", "trace=write", "-e", "inject=write:delay_enter=10000"]
    d.start()
    before = d.rss_peak_kib()
    total = 24 * 1024 * 1024
    msg_id, line = send_big(d, total)
    content = d.content(msg_id)
    assert content.endswith(line) and len(content) > total
    if not SANITIZED:
        grown = d.rss_peak_kib() - before
        assert grown < 8 * 1024, f"peak RSS grew by {grown} KiB while the disk lagged"


SMUGGLING = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r.\r\n", b"\r\n.\r", b"\r\n.\r\r\n",
             b"\r\n\x00.\r\n", b"\r\n.\x00\r\n", b"\n.\n\r\n"]


@pytest.mark.parametrize("variant", SMUGGLING, ids=[repr(v) for v in SMUGGLING])
def test_smuggling_variant_yields_one_message(daemon, variant):
    smuggled = b"MAIL FROM:<evil@attacker.example>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nSubject: smuggled\r\n\r\nx\r\n"
    c = send_raw(daemon, b"Subject: real\r\n\r\nbody" + variant + smuggled + b".\r\n")
    msg_id = queued_id(c.reply()[0])
    assert c.cmd("QUIT") == ["221 2.0.0 Bye"]
    entries = daemon.queue()
    assert [e["id"] for e in entries] == [msg_id]
    assert entries[0]["recipients"] == ["b@example.com"]
    content = daemon.content(msg_id)
    assert b"MAIL FROM:<evil@attacker.example>\r\n" in content
    # Canonical: no bare CR or LF, no lone-dot line.
    assert re.search(rb"\r(?!\n)|(?<!\r)\n", content) is None
    assert b"\r\n.\r\n" not in content and not content.startswith(b".\r\n")


def test_http_post_is_dropped_with_nothing_queued(daemon):
    c = daemon.connect()
    c.send(b"POST /send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 80\r\n\r\n"
           b"HELO x\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\nx\r\n.\r\n")
    assert c.closed()
    assert b"250 2.1.0" not in c.buf
    assert daemon.queue() == []
    wait_for(lambda: "event=http_request" in daemon.log(), what="http log line")


def test_client_drop_mid_data_leaves_nothing(daemon):
    c = send_raw(daemon, b"Subject: cut\r\n\r\n" + b"x" * 200000 + b"\r\nmore")
    c.close()
    wait_for(lambda: "reason=\"client disconnected during DATA\"" in daemon.log(), what="disconnect")
    wait_for(lambda: daemon.tmp_files() == [], what="tmp cleanup")
    assert daemon.queue() == []
    assert daemon.queued_files() == []


def test_kill_9_after_250_keeps_the_message(daemon):
    c = send_raw(daemon, b"Subject: durable\r\n\r\nkeep me\r\n.\r\n")
    msg_id = queued_id(c.reply()[0])
    daemon.kill9()
    daemon.start()
    assert [e["id"] for e in daemon.queue()] == [msg_id]
    assert "queued=1" in daemon.log()
    assert strip_trace(daemon.content(msg_id)).endswith(b"\r\n\r\nkeep me\r\n")


def test_spool_over_watermark_gives_452(daemon_factory):
    d = daemon_factory({"spool": {"max_messages": 2}})
    for _ in range(2):
        c = send_raw(d, b"x\r\n.\r\n")
        queued_id(c.reply()[0])
    c = d.connect()
    assert c.code() == 220
    c.cmd("HELO dev")
    assert c.cmd("MAIL FROM:<a@example.com>") == ["452 4.3.1 Insufficient system storage"]
    assert len(d.queue()) == 2
    wait_for(lambda: "event=watermark_high" in d.log(), what="watermark log")


def test_disallowed_client_is_refused(daemon_factory):
    d = daemon_factory({"allow_networks": ["192.0.2.0/24"]})
    c = d.connect()
    assert c.reply() == ["554 5.7.1 Error: access denied for 127.0.0.1"]
    assert c.closed()


def test_non_loopback_listen_without_allow_networks_refuses_to_start(daemon_factory):
    d = daemon_factory({"listen": ["0.0.0.0:0"]}, start=False)
    out = subprocess.run([BIN, "run", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "'0.0.0.0:0' is not a loopback address; set allow_networks explicitly" in out.stderr


def test_ipv6_and_unix_socket_listeners(daemon_factory, workdir):
    sock_path = str(workdir / "smtp.sock")
    d = daemon_factory({"listen": ["[::1]:0", f"unix:{sock_path}"]})
    v6 = [a for a in d.addresses if a.startswith("[::1]")][0]
    port = int(v6.rsplit(":", 1)[1])
    with smtplib.SMTP("::1", port, timeout=30) as s:
        assert s.sendmail("a@example.com", ["b@example.com"], b"x\r\n") == {}
    u = socket.socket(socket.AF_UNIX)
    u.connect(sock_path)
    from conftest import Client
    c = Client(u)
    assert c.code() == 220
    assert c.cmd("HELO dev") == ["250 relay.test"]
    assert c.cmd("MAIL FROM:<a@example.com>") == ["250 2.1.0 Ok"]
    assert c.cmd("RCPT TO:<b@example.com>") == ["250 2.1.5 Ok"]
    c.cmd("DATA")
    c.send(b"x\r\n.\r\n")
    queued_id(c.reply()[0])
    clients = sorted(e["client"] for e in d.queue())
    assert clients == ["::1", "unix"]


def test_oversize_during_data_is_552_and_leaves_nothing(daemon_factory):
    d = daemon_factory({"limits": {"max_message_size": "64KiB"}})
    c = send_raw(d, b"Subject: x\r\n\r\n" + (b"y" * 998 + b"\r\n") * 100 + b".\r\n")
    assert c.reply() == ["552 5.3.4 Error: message size exceeds fixed limit"]
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    assert d.queue() == [] and d.tmp_files() == []


def test_megabyte_without_newline_is_one_error(daemon):
    c = daemon.connect()
    assert c.code() == 220
    c.send(b"NOOP " + b"x" * (1024 * 1024))
    c.send(b"\r\nNOOP\r\n")
    assert c.reply() == ["500 5.5.2 Error: line too long"]
    assert c.reply() == ["250 2.0.0 Ok"]
    if not SANITIZED:
        assert daemon.rss_peak_kib() < 30 * 1024


def test_early_talker_gets_554(daemon_factory):
    d = daemon_factory({"limits": {"greeting_delay": "2s"}})
    s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    s.sendall(b"EHLO impatient\r\n")
    from conftest import Client
    c = Client(s)
    assert c.reply() == ["554 5.5.0 Error: SMTP protocol synchronization"]
    assert c.closed()


def test_idle_timeout_gives_421(daemon_factory):
    d = daemon_factory({"limits": {"idle_timeout": "300ms"}})
    c = d.connect()
    assert c.code() == 220
    assert c.reply() == ["421 4.4.2 relay.test Error: timeout exceeded"]
    assert c.closed()


def test_twenty_bad_commands_then_421(daemon):
    c = daemon.connect()
    assert c.code() == 220
    c.send(b"BOGUS\r\n" * 25)
    for _ in range(20):
        assert c.reply() == ["500 5.5.2 Error: command not recognized"]
    assert c.reply() == ["421 4.7.0 relay.test Error: too many errors"]
    assert c.closed()


def test_connection_limits(daemon_factory):
    d = daemon_factory({"limits": {"max_connections_per_client": 2}})
    a, b = d.connect(), d.connect()
    assert a.code() == 220 and b.code() == 220
    c = d.connect()
    assert c.reply() == ["421 4.7.0 relay.test Error: too many connections from 127.0.0.1"]
    assert c.closed()
    a.cmd("QUIT")
    assert a.closed()
    wait_for(lambda: d.log().count("event=disconnect") >= 2, what="disconnects")
    e = d.connect()
    assert e.code() == 220


def test_bare_newlines_reject_mode(daemon_factory):
    d = daemon_factory({"bare_newlines": "reject"})
    c = send_raw(d, b"Subject: x\r\n\r\na\nb\r\n.\r\n")
    assert c.reply() == ["550 5.6.0 Error: message contains bare CR or LF line endings"]
    assert d.queue() == [] and d.tmp_files() == []


def test_rewrite_from(daemon_factory):
    d = daemon_factory({"headers": {"rewrite_from": "alerts@example.com"}})
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.sendmail("nas@lan", ["ops@example.com"], b"From: NAS <nas@lan>\r\nSubject: disk\r\n\r\nx\r\n")
    [entry] = d.queue()
    assert entry["sender"] == "alerts@example.com"
    rest = strip_trace(d.content(entry["id"]))
    assert rest.startswith(b"From: NAS <alerts@example.com>\r\nSubject: disk\r\nReply-To: NAS <nas@lan>\r\n")


def test_sigterm_during_idle_session_says_421_and_exits_0(daemon):
    c = daemon.connect()
    assert c.code() == 220
    daemon.stop()
    assert c.reply() == ["421 4.3.2 relay.test Service shutting down, try again later"]


def test_concurrent_senders(daemon):
    errors = []

    def send(i):
        try:
            with smtplib.SMTP("127.0.0.1", daemon.port, timeout=60) as s:
                for j in range(5):
                    s.sendmail(f"s{i}@example.com", ["r@example.com"], f"Subject: {i}.{j}\r\n\r\nx\r\n".encode())
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(daemon.queue()) == 100


def test_strace_order_write_fsync_rename_fsyncdir_then_250(daemon_factory):
    d = daemon_factory(start=False)
    trace = d.dir / "strace.txt"
    d.env = {"ASAN_OPTIONS": "detect_leaks=0"}  # LeakSanitizer cannot run under ptrace
    d.prefix = ["strace", "-f", "-y", "-s", "64", "-o", str(trace),
                "-e", "trace=write,writev,pwrite64,fsync,fdatasync,rename,renameat,renameat2"]
    d.start()
    ids = []
    for _ in range(3):
        c = send_raw(d, b"Subject: traced\r\n\r\nbody\r\n.\r\n")
        ids.append(queued_id(c.reply()[0]))
        c.cmd("QUIT")
    d.stop()
    lines = trace.read_text().splitlines()

    def done_index(pattern):
        """Index of the line where a matching syscall completed (handles unfinished/resumed)."""
        rx = re.compile(pattern)
        for i, line in enumerate(lines):
            if rx.search(line):
                if "<unfinished ...>" not in line:
                    return i
                pid, name = line.split()[0], line.split()[1].split("(")[0]
                for j in range(i + 1, len(lines)):
                    if lines[j].startswith(pid + " ") and f"<... {name} resumed>" in lines[j]:
                        return j
        raise AssertionError(f"no syscall matching {pattern}")

    def start_index(pattern, after=0):
        rx = re.compile(pattern)
        for i in range(after, len(lines)):
            if rx.search(lines[i]):
                return i
        raise AssertionError(f"no syscall matching {pattern}")

    spool = re.escape(str(d.spool))
    for msg_id in ids:
        write = done_index(rf"write\(\d+<{spool}/tmp/{msg_id}>")
        fsync = done_index(rf"fsync\(\d+<{spool}/tmp/{msg_id}>")
        rename = done_index(rf"rename\w*\(.*{spool}/tmp/{msg_id}\".*{spool}/queue/{msg_id}\"")
        reply = start_index(rf"(write|writev)\(\d+<(TCP|socket).*250 2\.0\.0 Ok: queued as {msg_id}")
        dirsync = [i for i in range(rename, reply) if re.search(rf"fsync\(\d+<{spool}/queue>", lines[i])]
        assert write < fsync < rename < reply, (msg_id, write, fsync, rename, reply)
        # The directory fsync that covers the rename completed before the reply.
        assert any("<unfinished" not in lines[i] or done_index_after(lines, i) < reply for i in dirsync), msg_id


def done_index_after(lines, i):
    pid = lines[i].split()[0]
    for j in range(i + 1, len(lines)):
        if lines[j].startswith(pid + " ") and "<... fsync resumed>" in lines[j]:
            return j
    return len(lines)


def test_global_connection_limit(daemon_factory):
    d = daemon_factory({"limits": {"max_connections": 2}})
    a, b = d.connect(), d.connect()
    assert a.code() == 220 and b.code() == 220
    c = d.connect()
    assert c.reply() == ["421 4.7.0 relay.test Error: too many connections"]
    assert c.closed()


@pytest.mark.parametrize("umask,mode", [(0o000, None), (0o077, None), (0o000, "0600")])
def test_a_unix_socket_gets_its_configured_mode_whatever_the_umask(daemon_factory, workdir, umask, mode):
    """Default 0660 with the spool directory's group; a umask of 000 used to
    leave the socket world-writable (any local user could relay), 077 left
    the group out."""
    import grp
    sock_path = workdir / f"smtp-{umask:o}.sock"
    settings = {"listen": [f"unix:{sock_path}"]}
    if mode:
        settings["unix_socket_mode"] = mode
    d = daemon_factory(settings, start=False)
    d.spool.mkdir()
    group = grp.getgrnam("mail").gr_gid
    os.chown(d.spool, 0, group)
    d.prefix = ["sh", "-c", f'umask {umask:03o}; exec "$0" "$@"']
    d.start()
    st = os.stat(sock_path)
    assert stat.S_IMODE(st.st_mode) == int(mode or "0660", 8), oct(st.st_mode)
    assert st.st_gid == group


def test_a_closing_session_no_longer_counts_against_the_per_client_limit(daemon_factory):
    """A session counts against max_connections_per_client until its
    protocol ends, not until its last disk job and handle are done: with a
    slow disk (unlink delayed 2 s), a client that dropped mid-DATA stays
    around while its partial message is removed. A new connection from the
    same client used to get 421 4.7.0 then (smtp-source -c 50 against the
    default limit of 50 saw the same on every reconnect)."""
    d = daemon_factory({"limits": {"max_connections_per_client": 1}}, start=False)
    d.env = {"ASAN_OPTIONS": "detect_leaks=0"}
    d.prefix = ["strace", "-f", "-o", "/dev/null", "-e", "trace=unlink,unlinkat",
                "-e", "inject=unlink,unlinkat:delay_enter=2000000"]
    d.start()
    c = send_raw(d, b"Subject: cut short\r\n\r\n" + b"x" * 100000)
    c.close()
    wait_for(lambda: "event=disconnect session=c1" in d.log(), what="the first session's end")
    c2 = d.connect()
    assert c2.reply() == ["220 relay.test ESMTP spoolgate"]
    assert c2.cmd("QUIT") == ["221 2.0.0 Bye"]
    wait_for(lambda: d.tmp_files() == [], what="the partial message removed")


def trickle(c, data, every):
    """Sends data one byte at a time, `every` seconds apart (the pacing is
    what is tested); stops when the server has closed."""
    import time
    for b in data:
        try:
            c.send(bytes([b]))
        except OSError:
            return
        time.sleep(every)


def test_a_command_trickled_byte_by_byte_times_out(daemon_factory):
    """One byte every idle_timeout - 100 ms: the idle timer used to restart
    with every read, so such a client held its session for ever. A command
    must now be complete within idle_timeout of our last reply."""
    d = daemon_factory({"limits": {"idle_timeout": "1s"}})
    c = d.connect()
    assert c.code() == 220
    trickle(c, b"NOOP\r\n", 0.9)  # 5.4 s: five idle timeouts
    assert c.reply() == ["421 4.4.2 relay.test Error: timeout exceeded"]
    assert c.closed()


def test_the_data_phase_has_a_deadline(daemon_factory):
    """Inside DATA each block restarts the idle timer (a slow but steady
    sender is fine), and the whole DATA phase has limits.data_timeout."""
    d = daemon_factory({"limits": {"idle_timeout": "1s", "data_timeout": "2s"}})
    c = send_raw(d, b"")
    trickle(c, b"Subject: slow\r\n\r\n" + b"x" * 20, 0.5)  # each byte inside idle_timeout, 20 s in all
    assert c.reply() == ["421 4.4.2 relay.test Error: timeout exceeded"]
    assert c.closed()
    assert d.queue() == [] and d.tmp_files() == []
    assert 'stage="data (limits.data_timeout)"' in d.log()


def test_chatter_without_mail_is_capped(daemon_factory):
    """NOOP, RSET, VRFY and HELP do not count as errors; 100 of them since
    the last accepted message are allowed, then 421 4.7.0 (Postfix's
    smtpd_junk_command_limit). Recipients over the limit get an allowance
    of 1,000 before each counts as an error (smtpd_recipient_overshoot_limit)."""
    d = daemon_factory()
    c = d.connect()
    assert c.code() == 220
    c.cmd("EHLO dev")
    for i in range(50):  # a delivering client is not chattering: the count starts again
        assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    assert c.cmd("MAIL FROM:<a@example.com>")[0].startswith("250")
    assert c.cmd("RCPT TO:<b@example.com>")[0].startswith("250")
    assert c.cmd("DATA")[0].startswith("354")
    c.send(b"x\r\n.\r\n")
    assert c.reply()[0].startswith("250 2.0.0 Ok: queued")
    cmds = ["NOOP", "RSET", "VRFY x", "HELP"] * 25
    c.send(b"".join(f"{x}\r\n".encode() for x in cmds) + b"NOOP\r\n")
    replies = [c.reply()[0][:3] for _ in range(101)]
    assert replies[:100] == ["250", "250", "252", "214"] * 25 and replies[100] == "250"
    assert c.reply() == ["421 4.7.0 relay.test Error: too many commands"]
    assert c.closed()


def test_messages_still_in_data_count_against_the_watermark(daemon_factory):
    """The watermark used to count only committed mail: three clients that
    each announced 400 kB could all start DATA on a 1 MiB spool (and 50
    sessions x 35 MiB could overrun max_bytes and min_free_disk). Now a
    transaction reserves its SIZE (or 1 MiB without one) at MAIL, and what
    it writes grows the reservation."""
    d = daemon_factory({"spool": {"max_bytes": "1MiB"}})
    clients = []
    for size in (400000, 400000):
        c = d.connect()
        assert c.code() == 220
        c.cmd("EHLO dev")
        assert c.cmd(f"MAIL FROM:<a@example.com> SIZE={size}") == ["250 2.1.0 Ok"]
        assert c.cmd("RCPT TO:<b@example.com>") == ["250 2.1.5 Ok"]
        assert c.cmd("DATA")[0].startswith("354")
        clients.append(c)
    third = d.connect()
    assert third.code() == 220
    third.cmd("EHLO dev")
    assert third.cmd("MAIL FROM:<a@example.com> SIZE=400000") == ["452 4.3.1 Insufficient system storage"]
    # Without SIZE the share is 1 MiB: refused too while the others reserve 800 kB.
    assert third.cmd("MAIL FROM:<a@example.com>") == ["452 4.3.1 Insufficient system storage"]
    # One finishes small (its reservation ends), one gives up (its reservation
    # ends too): there is room again.
    clients[0].send(b"Subject: small\r\n\r\nbody\r\n.\r\n")
    assert clients[0].reply()[0].startswith("250 2.0.0 Ok: queued")
    clients[1].close()
    wait_for(lambda: "reason=\"client disconnected during DATA\"" in d.log(), what="the dropped client")
    assert third.cmd("MAIL FROM:<a@example.com> SIZE=400000") == ["250 2.1.0 Ok"]


def test_recipients_past_the_overshoot_allowance_count_as_errors(daemon_factory):
    d = daemon_factory({"limits": {"max_recipients": 1}})
    c = d.connect()
    assert c.code() == 220
    c.cmd("EHLO dev")
    c.cmd("MAIL FROM:<a@example.com>")
    n = 1 + 1000 + 20
    c.send(b"".join(f"RCPT TO:<r{i}@example.com>\r\n".encode() for i in range(n)))
    replies = [c.reply()[0] for _ in range(n)]
    assert replies[0] == "250 2.1.5 Ok"
    assert set(replies[1:]) == {"452 4.5.3 Error: too many recipients"}
    assert c.reply() == ["421 4.7.0 relay.test Error: too many errors"]
    assert c.closed()


def test_a_unix_socket_another_daemon_answers_on_is_not_taken_over(daemon_factory, workdir):
    """A second daemon (another spool, the same default submission_socket
    or listen path) used to unlink the first one's socket as "stale" and
    bind its own: the first daemon silently lost its local clients. A socket
    that still answers is left alone; the second daemon reports it."""
    path = str(workdir / "shared.sock")
    first = daemon_factory({"listen": ["127.0.0.1:0"], "submission_socket": path})
    assert "event=submission_listening" in first.log()
    second = daemon_factory({"listen": ["127.0.0.1:0"], "submission_socket": path})
    assert "event=submission_unavailable" in second.log() and "in use" in second.log()
    u = socket.socket(socket.AF_UNIX)
    u.connect(path)
    from conftest import Client
    c = Client(u)
    assert c.code() == 220
    c.cmd("QUIT")
    assert "event=connect" in first.log() and "client=unix" in first.log()
