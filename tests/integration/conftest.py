# SPDX-License-Identifier: MIT
"""Fixtures that run the real spoolgate binary with a generated config.

Every daemon listens on port 0 (the kernel picks a free port) and the test
reads the bound address from the daemon's own `event=listening` log line, so
tests never race for ports. Waiting is always "poll with a deadline" on an
observable event (a log line, a file, a socket reply), never a bare sleep.
Teardown sends SIGTERM and requires exit status 0, which the daemon returns
only when its event loop closed with no handle left.
"""
import base64
import json
import os
import re
import smtplib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BIN = os.path.abspath(os.environ.get("SG_BIN", str(Path(__file__).resolve().parents[2] / "build" / "spoolgate")))
SANITIZED = "sanitize" in BIN or "tsan" in BIN  # memory figures mean nothing there


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(json.dumps(x) if not isinstance(x, dict) else yaml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, str):
        return json.dumps(v)
    return str(v)


class Daemon:
    def __init__(self, workdir: Path, settings: dict, prefix=None, env=None):
        self.dir = workdir
        self.spool = workdir / "spool"
        self.config = workdir / "spoolgate.yaml"
        self.log_path = workdir / "daemon.log"
        self.prefix = prefix or []
        self.env = env
        self.pass_fds = ()
        self.proc = None
        self.write_config(settings)

    def write_config(self, settings):
        cfg = {
            "hostname": "relay.test",
            "listen": ["127.0.0.1:0"],
            "spool": {"dir": str(self.spool)},
            "submission_socket": str(self.dir / "submit.sock"),
        }
        for k, v in settings.items():
            if isinstance(v, dict) and isinstance(cfg.get(k), dict):
                cfg[k] = {**cfg[k], **v}
            else:
                cfg[k] = v
        self.config.write_text("".join(f"{k}: {yaml_value(v)}\n" for k, v in cfg.items()))

    def start(self, expect_ready=True, ready_timeout=15.0):
        self.log_file = open(self.log_path, "ab")
        self.log_offset = self.log_path.stat().st_size
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.prefix + [BIN, "run", "-c", str(self.config)],
                                     stdout=self.log_file, stderr=subprocess.STDOUT, env=env,
                                     pass_fds=self.pass_fds)
        if expect_ready:
            wait_for(lambda: re.search(r'event=ready|"event":"ready"', self.log()) or self.proc.poll() is not None,
                     timeout=ready_timeout, what="ready")
            assert self.proc.poll() is None, self.log()
            self.addresses = [a or j for a, j in re.findall(
                r'event=listening address=(\S+)|"event":"listening","address":"([^"]+)"', self.log())]
        return self

    def log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.log_offset)
            return f.read().decode(errors="replace")

    @property
    def port(self):
        return int(self.addresses[0].rsplit(":", 1)[1])

    @property
    def pid(self):
        """The daemon's pid, also when it runs under a wrapper such as strace."""
        if not self.prefix or os.path.realpath(f"/proc/{self.proc.pid}/exe") == os.path.realpath(BIN):
            return self.proc.pid  # no wrapper, or one that exec'd the daemon
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return int(wait_for(lambda: children.read_text().split(), what="daemon child")[0])

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return Client(s)

    def stop(self, expect=0):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        try:
            pid = self.pid
        except AssertionError:  # a wrapper whose daemon never started: do not leave it running
            self.proc.kill()
            self.proc.wait(timeout=30)
            raise
        os.kill(pid, signal.SIGTERM)
        rc = self.proc.wait(timeout=60)
        self.log_file.close()
        assert rc == expect, f"exit status {rc}\n{self.log()}"
        return rc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log_file.close()

    def queue(self):
        out = subprocess.run([BIN, "queue", "list", "--json", "-c", str(self.config)],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)

    def queued_files(self):
        return sorted(p for p in (self.spool / "queue").iterdir())

    def tmp_files(self):
        return sorted((self.spool / "tmp").iterdir())

    def content(self, msg_id):
        """The canonical content of a queued message (after the spool header)."""
        data = (self.spool / "queue" / msg_id).read_bytes()
        return data[data.index(b"\n\n") + 2:]

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def rss_peak_kib(self):
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")


class Client:
    """A raw SMTP client: exact bytes out, reply lines in."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed; pending {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def reply(self):
        """One whole (possibly multiline) reply as a list of lines."""
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return lines

    def code(self):
        return int(self.reply()[-1][:3])

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.reply()

    def closed(self, timeout=10):
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def pytest_collection_modifyitems(items):
    """The container image tests last: their image is built beside the
    other tests (scripts/check), and they wait for it."""
    items.sort(key=lambda item: item.fspath.basename == "test_image.py")


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="spoolgate-it-") as d:
        yield Path(d)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def daemon_factory(workdir, request):
    made = []

    def make(settings=None, start=True, **kw):
        sub = workdir / f"d{len(made)}"
        sub.mkdir()
        d = Daemon(sub, settings or {}, **kw)
        made.append(d)
        if start:
            d.start()
        return d

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for d in made:
        if failed:
            print(f"--- daemon log {d.log_path}:\n{d.log_path.read_text(errors='replace') if d.log_path.exists() else ''}")
        if d.proc is not None and d.proc.poll() is None:
            d.stop()


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


SUPPORT = Path(__file__).resolve().parents[1] / "support"


@pytest.fixture(scope="session")
def faultfs(tmp_path_factory):
    """tests/support/faultfs.c built as an LD_PRELOAD shim; returns a
    function giving a daemon's environment for the faults asked for."""
    so = tmp_path_factory.mktemp("faultfs") / "faultfs.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o", str(so), str(SUPPORT / "faultfs.c"),
                    "-ldl"], check=True)

    def env(daemon, **faults):
        e = {"LD_PRELOAD": str(so), "SG_FAULT_DIR": str(daemon.spool) + "/",
             # The shim comes before the sanitizer runtime in the link order.
             "ASAN_OPTIONS": "verify_asan_link_order=0:detect_leaks=1:abort_on_error=1"}
        e.update({f"SG_FAULT_{k.upper()}": str(v) for k, v in faults.items()})
        return e
    return env


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    import sys
    sys.path.insert(0, str(SUPPORT))
    from pki import Pki
    return Pki(tmp_path_factory.mktemp("pki"))


class Sink:
    """tests/support/smtp_sink.py as a subprocess."""

    def __init__(self, dir: Path, tls="implicit", cert=None, key=None, user=None, password=None, scenario=None,
                 client_ca=None, idle_timeout=None, fix_after=None, digest_only=False, token_file=None,
                 max_sessions=0, per_minute=0, rcpts_per_day=0):
        self.dir = dir
        if scenario:
            args = ["/usr/bin/python3", str(SUPPORT / "fake_upstream.py"), "--dir", str(dir), "--scenario", scenario]
        else:
            args = ["/usr/bin/python3", str(SUPPORT / "smtp_sink.py"), "--dir", str(dir), "--tls", tls]
        if cert:
            args += ["--cert", cert, "--key", key]
        if user:
            args += ["--user", user, "--password", password]
        if client_ca:
            args += ["--client-ca", client_ca]
        if idle_timeout:
            args += ["--idle-timeout", str(idle_timeout)]
        if fix_after:
            args += ["--fix-after", str(fix_after)]
        if digest_only:
            args += ["--digest-only"]
        if token_file:
            args += ["--token-file", str(token_file)]
        for flag, n in (("--max-sessions", max_sessions), ("--per-minute", per_minute),
                        ("--rcpts-per-day", rcpts_per_day)):
            if n:
                args += [flag, str(n)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(dir.parent / f"{dir.name}.err", "wb"),
                                     text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    def messages(self):
        out = []
        for eml in sorted(self.dir.glob("*.eml")):
            meta_path = eml.with_suffix(".json")
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            meta["content"] = eml.read_bytes()
            out.append(meta)
        return out

    def digests(self):
        """--digest-only: [(subject token, sha256 of the body)] per message taken."""
        p = self.dir / "digests.log"
        return [tuple(l.split(" ", 1)) for l in p.read_text().split("\n") if l] if p.exists() else []

    def events(self, connections=False):
        """The commands that reached the sink; with connections=True also
        CLOSE (a connection ended) and TIMEOUT (the sink ended an idle one)."""
        p = self.dir / "events.log"
        # Split on newlines only: str.splitlines() also splits on \x0c, \x1c
        # and friends, which a peer's binary garbage may contain.
        lines = [l for l in p.read_text(errors="replace").split("\n") if l.strip()] if p.exists() else []
        return lines if connections else [l for l in lines if l not in ("CLOSE", "TIMEOUT")]

    def wait_messages(self, n, timeout=30):
        return wait_for(lambda: len(self.messages()) >= n and self.messages(), timeout, f"{n} message(s) at the sink")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def sink_factory(workdir, pki):
    """A sink (or, with scenario=, the misbehaving fake upstream). Unless
    tls="none" or a cert is given, it presents the test CA's certificate for
    `leaf` ("server": localhost)."""
    made = []

    def make(name="sink", leaf="server", **kw):
        if kw.get("tls") != "none" and "cert" not in kw:
            kw["cert"], kw["key"] = pki.leaf(leaf)
        s = Sink(workdir / name, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


class Blackhole:
    """A port where connects hang, like a provider behind a firewall that
    drops SYNs: a listener that never accepts, its queue already full (Linux
    keeps backlog + 1 connections waiting; SYNs beyond that are dropped)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.filler = socket.create_connection(("127.0.0.1", self.port))

    def close(self):
        self.filler.close()
        self.listener.close()


@pytest.fixture
def blackhole():
    b = Blackhole()
    yield b
    b.close()


# The account the sinks accept and upstream_config() logs in with.
USER, PASSWORD = "relay@example.com", "s3cret-pw"


def upstream_config(sink, pki, workdir, scheme="smtps", host="localhost", user=USER, password=PASSWORD, **extra):
    pw = workdir / "password"
    pw.write_text(password + "\n")
    u = {"url": f"{scheme}://{host}:{sink.port}", "ca_file": pki.ca_file}
    if user:
        u.update(username=user, password_file=str(pw))
    u.update(extra)
    return u


def free_port():
    """A loopback port nothing listens on (the kernel picked it, then it was
    let go): connects to it are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def control(daemon, line, timeout=30):
    """One request on the daemon's control socket; the whole reply."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(str(daemon.spool / "control.sock"))
    s.sendall(line.encode() + b"\n")
    out = b""
    while chunk := s.recv(65536):
        out += chunk
    s.close()
    return out.decode(errors="replace")


def daemon_upstream_settings(upstreams, **extra):
    s = {"upstreams": upstreams,
         "delivery": {"retry": {"first": "1s", "max": "2s", "factor": 2, "jitter": 0},
                      "timeouts": {"connect": "5s", "greeting": "5s", "mail": "5s", "rcpt": "5s", "data": "5s",
                                   "block": "5s", "done": "5s"}}}
    s.update(extra)
    return s


def send(daemon, rcpts=("ops@example.com",), body=b"Subject: hello\r\n\r\nline one\r\n.dot line\r\n", sender="dev@lan"):
    """One message through the daemon's SMTP listener (smtplib)."""
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as s:
        s.sendmail(sender, list(rcpts), body)


def send_utf8(daemon):
    """A message whose recipient has a UTF-8 local part (RFC 6531)."""
    with smtplib.SMTP("127.0.0.1", daemon.port, timeout=30) as s:
        s.ehlo()
        s.sendmail("dev@lan", ["j\u00f6rg@example.com"], "Subject: gr\u00fc\u00dfe\r\n\r\nhallo\r\n".encode(),
                   mail_options=["SMTPUTF8"])


def queued_id(reply_line):
    m = re.match(r"250 2\.0\.0 Ok: queued as ([0-9A-Z]{16})$", reply_line)
    assert m, reply_line
    return m.group(1)


def send_raw(daemon, data: bytes, rcpts=("b@example.com",)):
    c = daemon.connect()
    assert c.code() == 220
    assert c.cmd("EHLO dev")[-1] == "250 SMTPUTF8"
    assert c.cmd("MAIL FROM:<a@example.com>") == ["250 2.1.0 Ok"]
    for r in rcpts:
        assert c.cmd(f"RCPT TO:<{r}>") == ["250 2.1.5 Ok"]
    assert c.cmd("DATA")[0].startswith("354")
    c.send(data)
    return c


def make_pair(daemon_factory, sink_factory, pki, workdir, tls="implicit", scheme="smtps", leaf="server",
              sink_kw=None, hold=None, **up):
    sink = sink_factory(tls=tls, user=USER, password=PASSWORD, **(sink_kw or {}), leaf=leaf)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir, scheme=scheme, **up)])
    if hold:
        settings["delivery"]["idle_hold"] = hold
    d = daemon_factory(settings)
    return d, sink


# The fake OAuth2 authorization server (tests/support/fake_oauth.py), for the
# OAuth tests.
CLIENT_SECRET = "client-s3cret-value"


def spawn_fake(workdir, pki, script, dir, *extra):
    """A fake HTTPS server of tests/support (fake_oauth.py, fake_api.py,
    fake_webhook.py) with the test PKI's server certificate: (process, port)."""
    cert, key = pki.leaf("server")
    proc = subprocess.Popen([sys.executable, str(SUPPORT / script), "--dir", str(dir), "--cert", cert, "--key", key,
                             *extra],
                            stdout=subprocess.PIPE, stderr=open(workdir / f"{dir.name}.err", "wb"), text=True)
    line = proc.stdout.readline()
    assert line.startswith("PORT "), line
    return proc, int(line.split()[1])


class TokenServer:
    def __init__(self, workdir, pki, lifetime, client_cert=None, service_account=None):
        self.dir = workdir / "oauth-server"
        extra = ["--client-cert", str(client_cert)] if client_cert else []
        extra += ["--service-account", service_account] if service_account else []
        self.proc, self.port = spawn_fake(workdir, pki, "fake_oauth.py", self.dir, "--lifetime", str(lifetime),
                                          "--client-secret", CLIENT_SECRET, *extra)
        self.url = f"https://localhost:{self.port}/token"

    def requests(self):
        p = self.dir / "requests.log"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def issued(self):
        p = self.dir / "tokens"
        return [l.split()[0] for l in p.read_text().splitlines()] if p.exists() else []

    def set_mode(self, mode):
        (self.dir / "mode").write_text(mode + "\n")

    def sign_in(self, refresh):
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "refresh").write_text(refresh + "\n")

    def keep_old_refresh_tokens(self):
        """Microsoft's way: a rotated refresh token is not revoked."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rotation").write_text("keep\n")

    def kill_on_rotation(self, pid):
        """SIGKILL to pid at the next rotation, after the new refresh token
        is made and before the answer leaves."""
        (self.dir / "kill_on_rotation").write_text(str(pid))

    def revoke_issued(self):
        with open(self.dir / "tokens.revoked", "a") as f:
            f.write("\n".join(self.issued()) + "\n")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def token_server_factory(workdir, pki):
    made = []

    def make(lifetime=3600, client_cert=None, service_account=None):
        t = TokenServer(workdir, pki, lifetime, client_cert, service_account)
        made.append(t)
        return t

    yield make
    for t in made:
        t.stop()


class ApiServer:
    """tests/support/fake_api.py: Microsoft Graph and Gmail API over TLS,
    taking the tokens `ts` (a TokenServer) issued."""

    def __init__(self, workdir, pki, ts):
        self.dir = workdir / "api-server"
        self.proc, self.port = spawn_fake(workdir, pki, "fake_api.py", self.dir, "--token-file", str(ts.dir / "tokens"))
        self.base = f"https://localhost:{self.port}"

    def _lines(self, name):
        p = self.dir / name
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def received(self):
        """What the API accepted: each with its decoded message bytes."""
        p = self.dir / "received"
        out = [json.loads(f.read_text()) for f in sorted(p.glob("*.json"))] if p.exists() else []
        for r in out:
            r["raw"] = base64.b64decode(r["message"])
        return out

    def requests(self):
        return self._lines("requests.jsonl")

    def hung(self):
        return self._lines("hung.jsonl")

    def script(self, *answers):
        """Canned answers for the next send requests, in order."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "script", "a") as f:
            for a in answers:
                f.write(json.dumps(a) + "\n")

    def wait_received(self, n, timeout=30):
        wait_for(lambda: len(self.received()) >= n, timeout=timeout, what=f"{n} messages at the fake API")
        return self.received()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def api_server_factory(workdir, pki):
    made = []

    def make(ts):
        a = ApiServer(workdir, pki, ts)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop()


class WebhookServer:
    """tests/support/fake_webhook.py: a notification receiver over TLS."""

    def __init__(self, workdir, pki, name="webhook"):
        self.dir = workdir / name
        self.proc, self.port = spawn_fake(workdir, pki, "fake_webhook.py", self.dir)
        self.base = f"https://localhost:{self.port}"

    def requests(self):
        p = self.dir / "requests.jsonl"
        return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []

    def accepted(self, path=None):
        """The requests answered 2xx (to `path` only, when given)."""
        return [r for r in self.requests() if r["status"] < 300 and (path is None or r["path"] == path)]

    def script(self, *answers):
        with open(self.dir / "script", "a") as f:
            for a in answers:
                f.write(json.dumps(a) + "\n")

    def down(self, yes=True):
        if yes:
            (self.dir / "down").write_text("")
        else:
            (self.dir / "down").unlink(missing_ok=True)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def webhook(workdir, pki):
    w = WebhookServer(workdir, pki)
    yield w
    w.stop()


class Lan:
    """A device on the LAN, for the rules that loopback is exempt from: a
    network namespace of this test's own, joined to this one by a veth pair
    with a /30 of 10.241.0.0/16 (.1 here: host_ip, .2 in the namespace:
    client_ip). Nothing leaves the machine: the addresses exist only on the
    two ends of the pair, and the namespace goes with the test."""

    count = 0

    def __init__(self):
        Lan.count += 1
        n = os.getpid() * 8 + Lan.count
        self.ns = f"sg-lan-{n}"
        host_if, client_if = f"sgh{n % 10**9}", f"sgc{n % 10**9}"
        base = 4 * (n % 16000)
        net = f"10.241.{base // 256}.{base % 256}"
        self.host_ip = f"10.241.{base // 256}.{base % 256 + 1}"
        self.client_ip = f"10.241.{base // 256}.{base % 256 + 2}"
        self.network = f"{net}/30"
        for cmd in (["ip", "netns", "add", self.ns],
                    ["ip", "link", "add", host_if, "type", "veth", "peer", "name", client_if],
                    ["ip", "link", "set", client_if, "netns", self.ns],
                    ["ip", "addr", "add", f"{self.host_ip}/30", "dev", host_if],
                    ["ip", "link", "set", host_if, "up"],
                    ["ip", "-n", self.ns, "addr", "add", f"{self.client_ip}/30", "dev", client_if],
                    ["ip", "-n", self.ns, "link", "set", client_if, "up"],
                    ["ip", "-n", self.ns, "link", "set", "lo", "up"]):
            subprocess.run(cmd, check=True, capture_output=True)

    def run(self, args, **kw):
        """A command inside the namespace: the device."""
        return subprocess.run(["ip", "netns", "exec", self.ns, *args], **kw)

    def close(self):
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # the veth pair goes with it


@pytest.fixture
def lan():
    net = Lan()
    yield net
    net.close()


def start_oauth_login(d, *args, until):
    """Starts `spoolgate oauth login` and reads its output up to the first line
    that starts with `until` (where it waits for the person): (process, lines)."""
    login = subprocess.Popen([BIN, "oauth", "login", *args, "-c", str(d.config)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in login.stdout:
        lines.append(line)
        if line.startswith(until):
            break
    return login, lines
