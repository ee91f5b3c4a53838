# SPDX-License-Identifier: MIT
"""bench/run's pieces: the TLS sink, the two relays under test (spoolgate
and a private Postfix null client, both relaying to that sink), the load
generator and the per-relay CPU and memory figures. bench/run measures and
reports; this module only starts, drives and stops things."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from postfix_instance import PostfixInstance  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


def wait_port(port, timeout=20):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    wait_until(up, timeout, f"port {port}")


# ---------------------------------------------------------------- the sink

class Sink:
    """smtp-sink (counts transactions) behind stunnel: implicit TLS on
    .port, STARTTLS on .starttls_port (stunnel's smtp protocol in server
    mode answers EHLO with STARTTLS, then passes the session through)."""

    def __init__(self, dir: Path, cert, key):
        self.plain = free_port()
        self.port = free_port()
        self.starttls_port = free_port()
        self.count = 0
        self.sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{self.plain}", "1024"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        conf = dir / "stunnel.conf"
        conf.write_text(f"foreground = yes\npid =\nsyslog = no\ndebug = 3\noutput = {dir}/stunnel.log\n"
                        f"[smtps]\naccept = 127.0.0.1:{self.port}\nconnect = 127.0.0.1:{self.plain}\n"
                        f"cert = {cert}\nkey = {key}\n"
                        f"[starttls]\naccept = 127.0.0.1:{self.starttls_port}\nconnect = 127.0.0.1:{self.plain}\n"
                        f"protocol = smtp\ncert = {cert}\nkey = {key}\n")
        self.stunnel = subprocess.Popen(["stunnel4", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_port(self.plain)
        wait_port(self.port)
        wait_port(self.starttls_port)

    def _read(self):
        buf = b""
        while True:
            c = self.sink.stdout.read(1)
            if not c:
                return
            if c in (b"\r", b"\n"):
                m = re.search(rb"mesg=(\d+)", buf)
                if m:
                    self.count = int(m.group(1))
                buf = b""
            else:
                buf += c

    def wait_count(self, n, timeout):
        wait_until(lambda: self.count >= n, timeout, f"{n} messages at the sink (have {self.count})")

    def stop(self):
        for p in (self.stunnel, self.sink):
            p.terminate()
            p.wait(timeout=10)


class ApiSink:
    """Microsoft Graph for bench/run --api: tests/support/fake_api.py in its
    count-only mode, with tests/support/fake_oauth.py issuing the tokens.
    Python, so its own rate bounds the end-to-end rate; the relay's CPU per
    message is what it measures."""

    def __init__(self, dir: Path, cert, key, ca):
        support = ROOT / "tests" / "support"
        self.dir = dir / "api"
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.procs = []
        ports = []
        for cmd in ([sys.executable, str(support / "fake_oauth.py"), "--dir", str(self.dir / "oauth"), "--cert", cert,
                     "--key", key, "--client-secret", "bench-secret"],
                    [sys.executable, str(support / "fake_api.py"), "--dir", str(self.dir / "graph"), "--cert", cert,
                     "--key", key, "--token-file", str(self.dir / "oauth" / "tokens"), "--count-only"]):
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            ports.append(int(p.stdout.readline().split()[1]))
            self.procs.append(p)
        self.token_port, self.port = ports

    def upstream(self, dir: Path, ca):
        secret = dir / "client-secret"
        secret.write_text("bench-secret\n")
        secret.chmod(0o600)
        return (f'  - url: graph://relay@bench.example\n    api_base: "https://localhost:{self.port}"\n'
                f'    ca_file: "{ca}"\n    oauth: {{provider: custom, grant: client_credentials, client_id: app-1, '
                f'token_url: "https://localhost:{self.token_port}/token", scope: "https://graph.microsoft.com/.default", '
                f'client_secret_file: "{secret}", ca_file: "{ca}"}}\n')

    @property
    def count(self):
        with urllib.request.urlopen(f"https://localhost:{self.port}/count", context=self.ctx, timeout=10) as r:
            return json.loads(r.read())["count"]

    def wait_count(self, n, timeout):
        wait_until(lambda: self.count >= n, timeout, f"{n} messages at the fake Graph")

    def stop(self):
        for p in self.procs:
            p.terminate()
            p.wait(timeout=10)


# ---------------------------------------------------------------- relays

def proc_stat(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime stime cutime cstime are fields 14-17 (1-based), here 11-14
        return [int(x) for x in fields[11:15]]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return [0, 0, 0, 0]


def mem_kib(pid):
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0, 0
    rss = int(re.search(r"^Rss:\s+(\d+)", text, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+)", text, re.M).group(1))
    return rss, pss


class Relay:
    name = ""

    def pids(self):
        raise NotImplementedError

    def cpu_seconds(self):
        """CPU of every live process of the relay plus the children its root
        process has reaped."""
        pids = self.pids()
        total = sum(sum(proc_stat(p)[:2]) for p in pids)
        if pids:
            total += sum(proc_stat(pids[0])[2:])
        return total / TICK

    def memory(self):
        rss = pss = 0
        for p in self.pids():
            r, s = mem_kib(p)
            rss += r
            pss += s
        return rss, pss


# The rates are measured on the shipped limits. Only the memory runs raise
# what they must, and their rows say so: a 50 MB message needs
# max_message_size above the default 35MiB, 1,000 idle connections from one
# address need max_connections and max_connections_per_client above 500/50.
MEMORY_LIMITS = "limits: {max_connections: 2000, max_connections_per_client: 2000, max_message_size: 64MiB}\n"


class Spoolgate(Relay):
    name = "spoolgate"

    def __init__(self, dir: Path, sink, ca, starttls=False, memory_run=False, intake_tls=None):
        self.port = free_port()
        url = f"smtp+starttls://localhost:{sink.starttls_port}" if starttls else f"smtps://localhost:{sink.port}"
        upstream = f'  - url: {url}\n    ca_file: "{ca}"\n'
        if isinstance(sink, ApiSink):
            upstream = sink.upstream(dir, ca)
        listen = f'"127.0.0.1:{self.port}"'
        if intake_tls:  # STARTTLS offered, not required: plain clients use the same port
            listen = (f'{{address: "127.0.0.1:{self.port}", tls: starttls, cert_file: "{intake_tls[0]}", '
                      f'key_file: "{intake_tls[1]}"}}')
        cfg = dir / "spoolgate.yaml"
        cfg.write_text(f'hostname: relay.bench\nlisten: [{listen}]\n'
                       f'spool: {{dir: "{dir}/spool"}}\n' + (MEMORY_LIMITS if memory_run else "") +
                       f'upstreams:\n{upstream}')
        self.log = open(dir / "spoolgate.log", "wb")
        self.proc = subprocess.Popen([str(ROOT / "build" / "spoolgate"), "run", "-c", str(cfg)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        wait_port(self.port)

    def pids(self):
        """The daemon and its live children (the HTTPS helper of the token
        requests and API upstreams): the daemon first."""
        if self.proc.poll() is not None:
            return []
        kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            children = [int(x) for x in kids.read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            children = []
        return [self.proc.pid, *children]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()


class Postfix(Relay):
    name = "postfix"

    def __init__(self, dir: Path, sink: Sink, ca, starttls=False, memory_run=False, intake_tls=None):
        self.port = free_port()
        main = {
            "relayhost": f"[localhost]:{sink.starttls_port if starttls else sink.port}",
            "smtp_tls_wrappermode": "no" if starttls else "yes",
            "smtp_tls_security_level": "secure",
            "smtp_tls_CAfile": ca,
            "smtp_tls_secure_cert_match": "nexthop",
            "smtp_host_lookup": "native",  # /etc/hosts: no DNS on the bench machine
            "mynetworks": "127.0.0.0/8",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "message_size_limit": "60000000",
            "default_process_limit": "100",
        }
        if intake_tls:  # STARTTLS offered, not required
            main.update({"smtpd_tls_security_level": "may", "smtpd_tls_cert_file": intake_tls[0],
                         "smtpd_tls_key_file": intake_tls[1]})
        self.pf = PostfixInstance(dir, main, listen=f"127.0.0.1:{self.port}").start()
        wait_port(self.port)

    def pids(self):
        return self.pf.pids()

    def stop(self):
        self.pf.stop()


# ---------------------------------------------------------------- load

def smtp_source(port, concurrency, count, size):
    t0 = time.monotonic()
    subprocess.run(["smtp-source", "-s", str(concurrency), "-m", str(count), "-l", str(size), "-f", "bench@lan",
                    "-t", "ops@example.com", f"127.0.0.1:{port}"], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


class StarttlsFront:
    """A client-side stunnel in front of a relay's port: smtp-source talks
    plain SMTP to .port and every connection reaches the relay through
    STARTTLS (stunnel's smtp protocol: it reads the greeting, says EHLO and
    STARTTLS, then passes the session through TLS). Its own CPU is not the
    relay's and is not counted."""

    def __init__(self, dir: Path, relay_port):
        self.port = free_port()
        conf = dir / "starttls-front.conf"
        conf.write_text(f"foreground = yes\npid =\nsyslog = no\n[c]\nclient = yes\nprotocol = smtp\n"
                        f"accept = 127.0.0.1:{self.port}\nconnect = 127.0.0.1:{relay_port}\nverifyChain = no\n")
        self.proc = subprocess.Popen(["stunnel4", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


class Sampler:
    """Peak RSS and PSS summed over the relay's processes, every 50 ms."""

    def __init__(self, relay):
        self.relay, self.peak_rss, self.peak_pss = relay, 0, 0
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop_ev.wait(0.05):
            rss, pss = self.relay.memory()
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.peak_rss, self.peak_pss


def throughput(relay, sink, concurrency, count, size, port=None):
    """Rates and CPU for count messages at a concurrency; port: where the
    load goes (default the relay's own, plain SMTP)."""
    base = sink.count
    cpu0 = relay.cpu_seconds()
    sampler = Sampler(relay)
    t0 = time.monotonic()
    accept = smtp_source(port or relay.port, concurrency, count, size)
    sink.wait_count(base + count, timeout=600)
    e2e = time.monotonic() - t0
    cpu = relay.cpu_seconds() - cpu0
    rss, pss = sampler.stop()
    return {"accept": count / accept, "e2e": count / e2e, "cpu_per_1000": cpu * 1000 / count, "rss": rss,
            "pss": pss}
