"""Real, private mail servers for tests: a Dovecot (IMAP + LMTP, Maildir, passwd-file users),
a Postfix whose SMTP listener hands every mail for one domain to that Dovecot over LMTP, and
an asyncio TCP proxy that can cut connections on demand (to break an IMAP session mid-FETCH).

Every server listens on free 127.0.0.1 ports and keeps all its files in one directory, so
parallel runs do not clash. The fixtures `dovecot` and `postfix` skip the test when the
binaries are missing, or fail it when the environment variable CI is set (Debian packages:
dovecot-imapd dovecot-lmtpd postfix). The servers run as root-started daemons, as in CI."""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import os
import shutil
import signal
import smtplib
import socket
import stat
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.helpers import free_port

HOST = "127.0.0.1"
MAIL_UID = 65534  # Dovecot refuses to store mail as root: nobody:nogroup owns the Maildirs
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PACKAGES = "dovecot-imapd dovecot-lmtpd postfix"


class MailServerError(RuntimeError):
    """A private mail server failed to start or to answer."""


def binary(name: str) -> str | None:
    """A server command's full path: on PATH, or in the sbin directories a user's PATH may
    lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _cmd(name: str) -> str:
    path = binary(name)
    if path is None:
        raise MailServerError(f"{name} not installed (Debian: {PACKAGES})")
    return path


def _tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log file (empty when it does not exist yet)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _tails(paths: tuple[Path, ...]) -> str:
    return "\n".join(tail for tail in map(_tail, paths) if tail)


def _greeting(port: int, prefix: bytes, timeout: float = 1.0) -> bytes | None:
    """The first line a server sends on `port` if it starts with `prefix`, else None."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            line = sock.makefile("rb").readline()
    except OSError:
        return None
    return line if line.startswith(prefix) else None


def _wait_greetings(
    proc: subprocess.Popen[bytes], checks: list[tuple[int, bytes]], what: str, *logs: Path
) -> None:
    """Wait until every (port, greeting prefix) answers, or raise with the logs' tails."""
    log = " ".join(str(path) for path in logs)
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(checks)
    while pending:
        if proc.poll() is not None:
            raise MailServerError(
                f"{what} exited with {proc.returncode} while starting; log {log}:\n"
                + _tails(logs))
        if time.monotonic() > deadline:
            ports = ", ".join(str(port) for port, _ in pending)
            raise MailServerError(
                f"{what} did not greet on port(s) {ports} within {START_TIMEOUT}s; "
                f"log {log}:\n" + _tails(logs))
        if _greeting(*pending[0]) is not None:
            pending.pop(0)
        else:
            time.sleep(0.02)


def _spawn(args: list[str], output: Path) -> subprocess.Popen[bytes]:
    """Start a daemon in the foreground as the leader of its own process group, so that the
    group holds exactly the daemon and its children; its stdout and stderr go to `output`."""
    with output.open("ab") as sink:
        return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, read from Linux /proc. Zombies are left
    out: once their parent is gone they wait for init to reap them, which can take a second."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                fields = stat_file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """End a daemon started by `_spawn` and every child it has: SIGTERM its whole process
    group at once (a Dovecot master alone lets its imap and log children linger for seconds),
    SIGKILL whatever is left after STOP_TIMEOUT, and reap the daemon."""
    if proc is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    # the group id cannot be reused while any member lives, so signalling it stays safe
    while proc.poll() is None or group_members(proc.pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
        time.sleep(0.01)


@dataclass
class _Attempt:
    number: int
    last: bool

    def retry(self, exc: BaseException, ports: list[int]) -> bool:
        """Whether a failed start is worth another try with fresh ports: one of them was
        taken (the server said so, or it exited silently and we cannot bind it either)."""
        if self.last or not isinstance(exc, MailServerError):
            return False
        return "Address already in use" in str(exc) or any(map(_port_taken, ports))


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _attempts(auto_ports: bool, tries: int = 3) -> Iterator[_Attempt]:
    count = tries if auto_ports else 1
    for number in range(count):
        yield _Attempt(number, number == count - 1)


def _check_traversable(path: Path) -> None:
    """Dovecot's mail user and Postfix's daemons must be able to enter every parent."""
    for parent in [path, *path.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise MailServerError(
                f"{parent} is not traversable by other users (chmod o+x it, or use a "
                "directory from tempfile.mkdtemp() chmod-ed 755)")


def _run(args: list[str], stdin: bytes | None = None) -> str:
    """Run a command; its stdout, or an error carrying its stderr."""
    done = subprocess.run(args, input=stdin, capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        raise MailServerError(
            f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")
    return done.stdout.decode(errors="replace")


def _flow_fields(line: str) -> dict[str, str]:
    """Parse one `doveadm -f flow` line (`key=value key=value`; the last value may hold spaces)."""
    fields: dict[str, str] = {}
    key = ""
    for word in line.strip().split(" "):
        name, eq, value = word.partition("=")
        if eq and name.isidentifier():
            key = name
            fields[key] = value
        elif key:
            fields[key] += " " + word
    return fields


class _Daemon:
    """A server process we started (see `_spawn`); `stop()` ends it and its children once."""

    _proc: subprocess.Popen[bytes] | None = None
    _stopped = True

    def _launch(self, args: list[str], output: Path) -> subprocess.Popen[bytes]:
        self._proc = _spawn(args, output)
        self._stopped = False
        return self._proc

    def stop(self) -> None:
        """End the server and all its children, and wait for them; safe to call twice (a
        second call never signals a process group whose id may have been reused)."""
        if not self._stopped:
            _stop_process(self._proc)
            self._stopped = True

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The master's pid, which is also its process group id."""
        return self._proc.pid if self._proc else None


DOVECOT_CONF = """\
protocols = imap lmtp
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
mail_uid = {uid}
mail_gid = {uid}
first_valid_uid = 100
lda_mailbox_autocreate = yes
mail_max_userip_connections = 100
lmtp_add_received_header = no
lmtp_hdr_delivery_address = none
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
protocol lmtp {{
  postmaster_address = postmaster@{domain}
}}
"""


class Dovecot(_Daemon):
    """A private Dovecot serving IMAP and LMTP on free 127.0.0.1 ports.

    Everything lives under `root` (which every user must be able to traverse): dovecot.conf,
    dovecot.log, the passwd-file `users` (plain passwords, re-read by Dovecot whenever it
    changes, so `add_user` works while running) and the Maildirs under mail/<address>.
    The master runs in the foreground as our child, so `stop()` knows exactly what to end."""

    def __init__(self, root: Path, domain: str = "example.test",
                 imap_port: int | None = None, lmtp_port: int | None = None,
                 tls: tuple[Path, Path] | None = None) -> None:
        """`tls`: (certificate, key) files; then IMAP over TLS listens on `imaps_port` too."""
        self.tls = tls
        self.imaps_port = free_port() if tls else 0
        self.root = Path(root)
        self.domain = domain
        self._auto_ports = imap_port is None and lmtp_port is None
        self.imap_port = imap_port or free_port()
        self.lmtp_port = lmtp_port or free_port()
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        self.output = self.root / "dovecot.out"
        self.users_file = self.root / "users"
        self.passwords: dict[str, str] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def _prepare(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        _check_traversable(self.root)
        os.chown(self.root / "mail", MAIL_UID, MAIL_UID)
        ssl = (f"ssl = yes\nssl_cert = <{self.tls[0]}\nssl_key = <{self.tls[1]}"
               if self.tls else "ssl = no")
        self.config.write_text(DOVECOT_CONF.format(
            host=HOST, root=self.root, uid=MAIL_UID, imap_port=self.imap_port,
            imaps_port=self.imaps_port, lmtp_port=self.lmtp_port, domain=self.domain, ssl=ssl))
        self._write_users()

    def start(self) -> None:
        """Start the server and wait for both the IMAP and the LMTP greeting. Ports picked
        here that someone took meanwhile are picked again (up to 3 tries)."""
        if self.running:
            return
        for attempt in _attempts(self._auto_ports):
            self._prepare()
            proc = self._launch([_cmd("dovecot"), "-F", "-c", str(self.config)], self.output)
            try:
                _wait_greetings(proc, [(self.imap_port, b"* OK"),
                                             (self.lmtp_port, b"220 ")],
                                "dovecot", self.log, self.output)
                return
            except BaseException as exc:
                self.stop()
                if not attempt.retry(exc, [self.imap_port, self.lmtp_port]):
                    raise
            self.imap_port, self.lmtp_port = free_port(), free_port()

    # -- users -----------------------------------------------------------------------------

    def _write_users(self) -> None:
        lines = "".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in self.passwords.items())
        tmp = self.users_file.with_suffix(".new")
        tmp.write_text(lines)
        tmp.chmod(0o644)
        tmp.replace(self.users_file)  # atomic: the auth process never reads half a file

    def add_user(self, address: str, password: str = "secret") -> str:
        """Add (or re-password) a mail user; works while the server runs. Returns the address."""
        if any(c in address + password for c in ":\n"):
            raise ValueError("':' and newlines cannot appear in a passwd-file entry")
        self.passwords[address] = password
        self._write_users()
        return address

    def imap_url(self, user: str, password: str | None = None, mailbox: str = "INBOX") -> str:
        """imap://user:password@127.0.0.1:port/mailbox, with the user's '@' as %40."""
        pw = self.passwords.get(user, "") if password is None else password
        return (f"imap://{quote(user, safe='')}:{quote(pw, safe='')}@{HOST}:{self.imap_port}/"
                f"{quote(mailbox)}")

    # -- mail ------------------------------------------------------------------------------

    def deliver(self, raw: bytes, to: str, sender: str = "sender@example.test") -> None:
        """Deliver a message over LMTP, as an MTA would. IMAP FETCH BODY[] then gives
        `Return-Path: <sender>` CRLF followed by `raw` byte for byte (when `raw` ends its lines
        with CRLF): Dovecot always prepends Return-Path; Delivered-To and Received are off."""
        with smtplib.LMTP(HOST, self.lmtp_port, timeout=10) as lmtp:
            refused = lmtp.sendmail(sender, [to], raw)
        if refused:
            raise MailServerError(f"LMTP refused {refused}")

    def append(self, raw: bytes, user: str, mailbox: str = "INBOX") -> None:
        """Store a message with IMAP APPEND as `user` (creating the mailbox when needed); it is
        stored exactly as given, with no added header."""
        with imaplib.IMAP4(HOST, self.imap_port, timeout=10) as imap:
            imap.login(user, self.passwords[user])
            imap.create(_imap_quote(mailbox))  # "NO already exists" is fine
            status, data = imap.append(_imap_quote(mailbox), "", None, raw)
            if status != "OK":
                raise MailServerError(f"APPEND to {mailbox} failed: {data!r}")
            imap.logout()

    def doveadm(self, *args: str, stdin: bytes | None = None) -> str:
        """Run a doveadm command against this instance (flow output format)."""
        return _run([_cmd("doveadm"), "-c", str(self.config), "-f", "flow", *args], stdin)

    def status(self, user: str, mailbox: str = "INBOX") -> dict[str, int]:
        """messages, uidnext, uidvalidity and unseen of a mailbox, as doveadm reports them."""
        out = self.doveadm("mailbox", "status", "-u", user,
                           "messages uidnext uidvalidity unseen", mailbox)
        return {key: int(value) for key, value in _flow_fields(out).items()}

    def count(self, user: str, mailbox: str = "INBOX") -> int:
        """How many messages a mailbox holds."""
        return self.status(user, mailbox)["messages"]

    def uids(self, user: str, mailbox: str = "INBOX") -> list[int]:
        """The UIDs in a mailbox, ascending."""
        out = self.doveadm("fetch", "-u", user, "uid", "mailbox", mailbox, "all")
        return sorted(int(_flow_fields(line)["uid"]) for line in out.splitlines() if line)

    def flags(self, user: str, uid: int, mailbox: str = "INBOX") -> set[str]:
        """The flags of one message, e.g. {"\\\\Seen"}."""
        out = self.doveadm("fetch", "-u", user, "flags", "mailbox", mailbox, "uid", str(uid))
        if not out.strip():
            raise KeyError(f"no UID {uid} in {user}'s {mailbox}")
        return set(_flow_fields(out.splitlines()[0]).get("flags", "").split())

    def maildir(self, user: str, mailbox: str = "INBOX") -> Path:
        """The Maildir directory holding a mailbox (Maildir++ layout: INBOX is the root)."""
        base = self.root / "mail" / user / "Maildir"
        return base if mailbox.upper() == "INBOX" else base / ("." + mailbox.replace("/", "."))

    def recreate_mailbox(self, user: str, mailbox: str = "INBOX") -> int:
        """Make a mailbox start over empty, with a new (higher) UIDVALIDITY and UIDs from 1 again,
        as if deleted and created anew; return the new UIDVALIDITY. Other mailboxes are deleted
        and created with doveadm. INBOX cannot be deleted in Dovecot, so its messages are
        expunged with doveadm and its dovecot-uidlist and dovecot.index* files removed: Dovecot
        then rebuilds them with the next UIDVALIDITY from the Maildir's dovecot-uidvalidity
        counter. Call it with no IMAP session on the mailbox (an open one may be dropped)."""
        old = self.status(user, mailbox)["uidvalidity"]
        if mailbox.upper() == "INBOX":
            self.doveadm("expunge", "-u", user, "mailbox", mailbox, "all")
            folder = self.maildir(user, mailbox)
            for path in [folder / "dovecot-uidlist", *folder.glob("dovecot.index*")]:
                path.unlink(missing_ok=True)
        else:
            self.doveadm("mailbox", "delete", "-u", user, mailbox)
            self.doveadm("mailbox", "create", "-u", user, mailbox)
        new = self.status(user, mailbox)["uidvalidity"]
        if new == old:
            raise MailServerError(f"UIDVALIDITY of {mailbox} stayed {old}")
        return new


def _imap_quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/spool
data_directory = {root}/data
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
myhostname = mx.{domain}
mydomain = {domain}
myorigin = {domain}
mydestination =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = reject_unauth_destination
virtual_mailbox_domains = {domain}
virtual_transport = lmtp:inet:{host}:{lmtp_port}
alias_maps =
alias_database =
smtp_dns_support_level = disabled
biff = no
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
"""

POSTFIX_MASTER_CF = """\
{host}:{smtp_port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
local     unix  - n n -  - local
virtual   unix  - n n -  - virtual
lmtp      unix  - - n -  - lmtp
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""

# the queue layout `postfix check` would create (it takes ~2 s; creating it ourselves is instant)
QUEUE_DIRS = {
    "incoming": 0o700, "active": 0o700, "deferred": 0o700, "defer": 0o700, "bounce": 0o700,
    "trace": 0o700, "flush": 0o700, "hold": 0o700, "corrupt": 0o700, "saved": 0o700,
    "private": 0o700, "maildrop": 0o730, "public": 0o710,
}


class Postfix(_Daemon):
    """A private Postfix: its SMTP listener (free 127.0.0.1 port) relays every mail for
    `domain` to a Dovecot's LMTP port; recipients in other domains are refused at RCPT
    ("Relay access denied"), so nothing ever waits in the queue for DNS. Config, queue and
    `maillog` live under `root`. The master runs in the foreground (`master -d`) as our child,
    in its own process group; the queue layout is made here, not by the ~2 s `postfix check`."""

    def __init__(self, root: Path, lmtp_port: int, domain: str = "example.test",
                 smtp_port: int | None = None) -> None:
        self.root = Path(root)
        self.domain = domain
        self.lmtp_port = lmtp_port
        self._auto_ports = smtp_port is None
        self.smtp_port = smtp_port or free_port()
        self.config_dir = self.root / "conf"
        self.maillog = self.root / "maillog"
        self.output = self.root / "master.out"

    def _prepare(self) -> None:
        import grp
        import pwd

        owner = pwd.getpwnam("postfix").pw_uid
        postdrop = grp.getgrnam("postdrop").gr_gid
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        _check_traversable(self.root)
        for sub in ("conf", "spool", "spool/pid", "data"):
            (self.root / sub).mkdir(exist_ok=True)
            (self.root / sub).chmod(0o755)
        os.chown(self.root / "data", owner, 0)
        for name, mode in QUEUE_DIRS.items():
            path = self.root / "spool" / name
            path.mkdir(exist_ok=True)
            os.chown(path, owner, postdrop if name in ("maildrop", "public") else 0)
            path.chmod(mode)
        values = {"root": self.root, "domain": self.domain, "host": HOST,
                  "lmtp_port": self.lmtp_port, "smtp_port": self.smtp_port}
        (self.config_dir / "main.cf").write_text(POSTFIX_MAIN_CF.format(**values))
        (self.config_dir / "master.cf").write_text(POSTFIX_MASTER_CF.format(**values))
        # Postfix re-reads a config file that changed within the last second (300 ms naps,
        # ~2 s at startup): back-date both files so the master starts at once
        past = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(self.config_dir / name, (past, past))

    def start(self) -> None:
        """Start the master and wait for the SMTP greeting. A port picked here that someone
        took meanwhile is picked again (up to 3 tries)."""
        if self.running:
            return
        master = Path(_run([_cmd("postconf"), "-d", "-h", "daemon_directory"]).strip()) / "master"
        for attempt in _attempts(self._auto_ports):
            self._prepare()
            proc = self._launch([str(master), "-d", "-c", str(self.config_dir)], self.output)
            try:
                _wait_greetings(proc, [(self.smtp_port, b"220 ")], "postfix",
                                self.maillog, self.output)
                return
            except BaseException as exc:
                self.stop()
                if not attempt.retry(exc, [self.smtp_port]):
                    raise
            self.smtp_port = free_port()



# -- TCP proxy --------------------------------------------------------------------------------


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a connection abruptly: SO_LINGER 0 makes the kernel send RST, not FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side, the server side, and its cut budget."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    budget: int | None = None  # server->client bytes still allowed before the cut

    def reset(self) -> None:
        _reset(self.client)
        _reset(self.server)


class TcpProxy:
    """A TCP proxy on a free 127.0.0.1 port forwarding to (host, port), for breaking
    connections the way networks do.

    `cut()` resets every open connection at once (RST on both sides). `pause()` makes new
    connections get accepted and reset at once (the client sees a connection that dies
    before any greeting; the listener stays up so the port cannot be lost); `resume()` ends
    that. `cut_after(n)` arms the next connection(s) to be reset once n bytes have gone
    server->client: the first n bytes are passed on, nothing after them (on loopback they
    reach the client before the reset; keep n below ~100 KB so they fit its socket buffer).
    Counters: `connections` (accepted, paused ones included), `bytes_up` (client->server),
    `bytes_down` (server->client)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.paused = False
        self._links: set[_Link] = set()
        self._armed: list[int] = []
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def open_connections(self) -> int:
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port)

    async def stop(self) -> None:
        """Stop listening and reset what is still open; safe to call twice."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.cut()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=STOP_TIMEOUT)

    def cut(self) -> None:
        """Reset every open connection, both sides, now."""
        for link in list(self._links):
            link.reset()
        self._links.clear()

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def cut_after(self, n_bytes: int, connections: int = 1) -> None:
        """Reset each of the next `connections` connections after n bytes server->client."""
        self._armed.extend([n_bytes] * connections)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        if self.paused:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        link = _Link(writer, up_writer, self._armed.pop(0) if self._armed else None)
        self._links.add(link)
        await asyncio.gather(self._pump(reader, link, up=True),
                             self._pump(up_reader, link, up=False), return_exceptions=True)
        self._links.discard(link)
        for side in (writer, up_writer):
            side.close()
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await side.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, link: _Link, up: bool) -> None:
        """Copy one direction until EOF or error, passing the EOF on as a half-close."""
        dest = link.server if up else link.client
        try:
            while data := await reader.read(65536):
                if not up and link.budget is not None and len(data) >= link.budget:
                    dest.write(data[:link.budget])
                    self.bytes_down += link.budget
                    with contextlib.suppress(OSError):
                        await dest.drain()
                    self._links.discard(link)
                    link.reset()
                    return
                if not up and link.budget is not None:
                    link.budget -= len(data)
                dest.write(data)
                if up:
                    self.bytes_up += len(data)
                else:
                    self.bytes_down += len(data)
                await dest.drain()
            if dest.can_write_eof() and not dest.is_closing():
                dest.write_eof()
        except OSError:
            self._links.discard(link)
            link.reset()


# -- fixtures -----------------------------------------------------------------------------------


def require_mail_binaries(*names: str) -> None:
    """Skip the test when a server binary is missing (fail it under CI, which installs them).
    Without names: everything Dovecot and Postfix need."""
    wanted = names or ("dovecot", "doveadm", "postfix", "postconf")
    missing = [name for name in wanted if not binary(name)]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed (Debian: {PACKAGES})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def mail_dir(prefix: str) -> Iterator[Path]:
    """A fresh world-traversable directory under the system temp dir (pytest's own tmp_path
    sits under a 0700 directory the mail daemons could not enter), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A running private Dovecot for one test (starts in ~0.1 s), with no users yet."""
    require_mail_binaries("dovecot", "doveadm")
    with mail_dir("hub-dovecot-") as root:
        server = Dovecot(root)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def postfix(dovecot: Dovecot) -> Iterator[Postfix]:
    """A running private Postfix relaying mail for example.test to the test's Dovecot
    (starts in ~0.2 s)."""
    require_mail_binaries("postfix", "postconf")
    with mail_dir("hub-postfix-") as root:
        server = Postfix(root, dovecot.lmtp_port, dovecot.domain)
        server.start()
        try:
            yield server
        finally:
            server.stop()
