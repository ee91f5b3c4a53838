# SPDX-License-Identifier: MIT
"""A private Postfix instance under a temporary directory, for end-to-end tests
(a real MTA receiving over TLS with SASL AUTH) and for the benchmarks.

Everything lives under `dir` (configuration, queue, data, mail, log); nothing
of the system's Postfix configuration is used or changed except that Postfix
itself requires an alternate configuration directory to be named in the
default main.cf, which is created with only that line if absent.
"""
import grp
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

MASTER_CF = """\
{listen} inet n - n - - smtpd{smtpd_opts}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class PostfixInstance:
    def __init__(self, dir: Path, main: dict, listen: str = None, smtpd_opts: dict = None):
        self.dir = Path(dir)
        self.conf = self.dir / "conf"
        self.conf.mkdir(parents=True, exist_ok=True)
        for sub in ("queue", "data", "mail"):
            (self.dir / sub).mkdir(exist_ok=True)
        pw = pwd.getpwnam("postfix")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.chown(self.dir / "data", self.uid, self.gid)
        os.chown(self.dir / "mail", self.uid, self.gid)
        self.log = self.dir / "maillog"
        base = {
            "compatibility_level": "3.6",
            "queue_directory": self.dir / "queue",
            "data_directory": self.dir / "data",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "mx.test",
            "mydomain": "test",
            "myorigin": "mx.test",
            "mydestination": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "maillog_file": self.log,
            "maillog_file_prefixes": self.dir,
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "biff": "no",
            "smtputf8_enable": "no",
            "meta_directory": "/etc/postfix",
            "import_environment": "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C",
        }
        base.update(main)
        (self.conf / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in base.items()))
        opts = "".join(f"\n  -o {k}={v}" for k, v in (smtpd_opts or {}).items())
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=listen or "127.0.0.1:smtp", smtpd_opts=opts))
        self._allow_alternate_config()

    def _allow_alternate_config(self):
        main = Path("/etc/postfix/main.cf")
        if not main.exists():
            main.write_text("# created by spoolgate tests: lists private test instances only\n")
        text = main.read_text()
        if str(self.conf) not in text:
            dirs = [l.split("=", 1)[1].strip() for l in text.splitlines() if l.startswith("alternate_config_directories")]
            keep = [l for l in text.splitlines() if not l.startswith("alternate_config_directories")]
            all_dirs = " ".join(d for d in dirs + [str(self.conf)] if d)
            main.write_text("\n".join(keep + [f"alternate_config_directories = {all_dirs}"]) + "\n")

    def postfix(self, *args, check=True):
        # Postfix reports command errors only to syslog unless stderr is a
        # terminal: `script` provides one so failures are readable.
        cmd = " ".join(["postfix", "-c", str(self.conf), *args])
        return subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, check=check)

    def start(self):
        out = self.postfix("start", check=False)
        if out.returncode != 0:
            raise RuntimeError(f"postfix start failed: {out.stdout}{out.stderr}\n{self.read_log()}")
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not pidfile.exists():
            time.sleep(0.05)
        return self

    def stop(self):
        pids = self.pids()
        self.postfix("stop", check=False)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids[:1]):
            time.sleep(0.05)

    def read_log(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def pids(self):
        """Pids of this instance's processes (master and its children)."""
        pidfile = self.dir / "queue" / "pid" / "master.pid"
        if not pidfile.exists():
            return []
        master = int(pidfile.read_text().split()[0])
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout
        return [master] + [int(p) for p in out.split()]


def tls_receiver(dir: Path, port: int, cert: str, key: str, user: str, password: str, wrapper=True):
    """A Postfix that receives over TLS (smtps when wrapper, else STARTTLS) with
    SASL AUTH (Cyrus sasldb), and stores mail for example.com in a Maildir."""
    dir = Path(dir)
    # Debian's Postfix reads $config_directory/sasl/smtpd.conf.
    sasl = dir / "conf" / "sasl"
    sasl.mkdir(parents=True, exist_ok=True)
    db = dir / "sasldb2"
    local, realm = user.split("@", 1)
    subprocess.run(["saslpasswd2", "-p", "-c", "-f", str(db), "-u", realm, local], input=password, text=True,
                   check=True)
    os.chown(db, pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid)
    os.chmod(db, 0o640)
    (sasl / "smtpd.conf").write_text(f"pwcheck_method: auxprop\nauxprop_plugin: sasldb\nmech_list: PLAIN LOGIN\n"
                                     f"sasldb_path: {db}\n")
    key_copy = dir / "server.key"
    shutil.copy(key, key_copy)
    os.chmod(key_copy, 0o600)
    pw = pwd.getpwnam("postfix")
    main = {
        "smtpd_tls_cert_file": cert,
        "smtpd_tls_key_file": key_copy,
        "smtpd_tls_security_level": "encrypt" if not wrapper else "may",
        "smtpd_tls_auth_only": "yes",
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": sasl,
        "smtpd_sasl_local_domain": "",
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
        "virtual_mailbox_domains": "example.com",
        "virtual_mailbox_base": dir / "mail",
        "virtual_mailbox_maps": "static:inbox/",
        "virtual_uid_maps": f"static:{pw.pw_uid}",
        "virtual_gid_maps": f"static:{pw.pw_gid}",
        "virtual_minimum_uid": "1",
    }
    opts = {"smtpd_tls_wrappermode": "yes"} if wrapper else {}
    return PostfixInstance(dir, main, listen=f"127.0.0.1:{port}", smtpd_opts=opts)
