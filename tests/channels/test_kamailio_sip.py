"""The real thing: SIPp places calls through a private Kamailio running the shipped
config/kamailio/kamailio.cfg (only its defines differ), which posts the calls' events to a
live hub. Needs the kamailio binary with its dialog, http_client, jansson and crypto modules
(Debian: kamailio kamailio-utils-modules kamailio-extra-modules kamailio-tls-modules) and
SIPp (sip-tester): missing, the test is skipped, or fails under CI."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.app import create_app
from hub.models import Call, Client, Interaction

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "kamailio" / "kamailio.cfg"
SCENARIOS = ROOT / "tests" / "sip"
RING_MS = 2000  # FR_INV_TIMER: how long the unanswered call rings
DEADLINE = 15.0  # seconds any one step may take


MODULES = ("dialog.so", "http_client.so", "jansson.so", "crypto.so")


def _modules_dir() -> str | None:
    found = sorted(glob.glob("/usr/lib/*/kamailio/modules")) + sorted(
        glob.glob("/usr/lib*/kamailio/modules") + glob.glob("/usr/local/lib*/kamailio/modules"))
    return found[0] if found else None


def _tools() -> tuple[str, str]:
    """The kamailio and sipp binaries (skip, or fail under CI, when they are missing)."""
    kamailio, sipp = shutil.which("kamailio"), shutil.which("sipp")
    missing = [n for n, p in (("kamailio", kamailio), ("sipp", sipp)) if not p]
    modules = _modules_dir()
    if kamailio and modules:
        missing += [m for m in MODULES if not os.path.exists(os.path.join(modules, m))]
    if kamailio and sipp and not missing:
        return kamailio, sipp
    message = (f"{', '.join(missing)} not installed (Debian: kamailio kamailio-utils-modules "
               "kamailio-extra-modules kamailio-tls-modules sip-tester)")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_udp_ports(count: int) -> list[int]:
    """Ports nothing listens on now (the OS picks them, so parallel runs don't clash)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _udp_bound(port: int) -> bool:
    """Whether some process has a UDP socket on 127.0.0.1:port (Linux /proc)."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/udp") as table:
        return any(line.split()[1] == wanted for line in list(table)[1:])


class Processes:
    """The subprocesses a test starts; every one is stopped at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[asyncio.subprocess.Process] = []

    async def start(self, name: str, *args: str) -> asyncio.subprocess.Process:
        log = os.open(self.workdir / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL, stdout=log,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
            )
        finally:
            os.close(log)
        self.started.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    async def stop_all(self) -> None:
        for proc in reversed(self.started):
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)  # kamailio's workers are in its group
                try:
                    await asyncio.wait_for(proc.wait(), 5)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    await proc.wait()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[Processes]:
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        await procs.stop_all()


async def start_kamailio(
    procs: Processes, kamailio: str, listen: int, uas: int, hub_url: str, secret: str
) -> None:
    """The shipped config, byte for byte, with this test's defines."""
    cfg = procs.workdir / "kamailio.cfg"
    cfg.write_bytes(SHIPPED.read_bytes())
    (procs.workdir / "run").mkdir()
    args = [kamailio, "-f", str(cfg), "-DD", "-E", "-m", "64", "-M", "8",
            "-P", str(procs.workdir / "run" / "kamailio.pid"), "-Y", str(procs.workdir / "run"),
            "-A", f"LISTEN=udp:127.0.0.1:{listen}",
            "-A", f'NEXT_HOP="sip:127.0.0.1:{uas}"',
            "-A", f'HUB_URL="{hub_url}"',
            "-A", f'HUB_SECRET="{secret}"',
            "-A", f"FR_INV_TIMER={RING_MS}",
            "-A", "CHILDREN=2"]
    modules = _modules_dir()
    if modules:
        args[1:1] = ["-L", modules]
    proc = await procs.start("kamailio", *args)
    deadline = time.monotonic() + DEADLINE
    while not _udp_bound(listen):
        if proc.returncode is not None or time.monotonic() > deadline:
            pytest.fail(f"kamailio did not start:\n{procs.log('kamailio')}")
        await asyncio.sleep(0.05)


async def place_call(
    procs: Processes, sipp: str, ports: dict[str, int], uas: str, uac: str, caller: str,
    callee: str,
) -> None:
    """One call: a SIPp UAS playing `uas` behind the proxy, a SIPp UAC calling through it."""
    name = f"{uas}-{caller}".replace("+", "")
    # SIPp's own media (6000+) and control (8888+) ports stay at its defaults: it steps to the
    # next free one when they are taken, which a fixed -mp/-cp would not
    common = ["-i", "127.0.0.1", "-m", "1", "-nostdin", "-trace_err", "-timeout", "20s",
              "-timeout_error"]
    server = await procs.start(f"uas-{name}", sipp, "-sf", str(SCENARIOS / f"{uas}.xml"),
                               "-p", str(ports["uas"]), *common)
    while not _udp_bound(ports["uas"]):
        if server.returncode is not None:
            pytest.fail(f"SIPp UAS did not start:\n{procs.log(f'uas-{name}')}")
        await asyncio.sleep(0.02)
    client = await procs.start(
        f"uac-{name}", sipp, "-sf", str(SCENARIOS / f"{uac}.xml"),
        f"127.0.0.1:{ports['kamailio']}", "-p", str(ports["uac"]), "-s", callee,
        "-key", "caller", caller, "-d", "1000", *common,
    )
    try:
        rc = await asyncio.wait_for(client.wait(), DEADLINE)
        await asyncio.wait_for(server.wait(), DEADLINE)
    except TimeoutError:
        pytest.fail(f"SIPp call {name} hung:\n{procs.log(f'uac-{name}')}\n"
                    f"{procs.log('kamailio')}")
    assert rc == 0, (f"SIPp call {name} failed ({rc}):\n{procs.log(f'uac-{name}')}\n"
                     f"{procs.log(f'uas-{name}')}\n{procs.log('kamailio')}")


async def until(check: Any, what: str, procs: Processes) -> None:
    """Poll the hub's database until `check()` holds (the events are POSTed asynchronously)."""
    deadline = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{procs.log('kamailio')}")
        await asyncio.sleep(0.05)


async def test_calls_through_a_real_kamailio_land_on_the_cards(
    aiohttp_server: Any, aiohttp_client: Any, make_settings: Any, orm: None,
    manager: dict[str, Any], processes: Processes,
) -> None:
    kamailio, sipp = _tools()
    secret = secrets.token_hex(16)
    app = create_app(make_settings(telephony={"kamailio": {"secret": secret}}), manage_db=False)
    server = await aiohttp_server(app, host="127.0.0.1")
    api = await aiohttp_client(server)
    ws = await api.ws_connect("/api/stream", headers=manager["headers"])
    try:
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        ports = dict(zip(("kamailio", "uas", "uac"), _free_udp_ports(3), strict=True))
        hub_url = str(server.make_url("/webhooks/telephony/kamailio"))
        await start_kamailio(processes, kamailio, ports["kamailio"], ports["uas"], hub_url,
                             secret)

        # extension 101 calls a client (outbound), then the client Anna is busy-rejected
        # (writing her number as +7-916-...), calls again and is answered, and a third client
        # rings until the proxy gives up
        await place_call(processes, sipp, ports, "uas_answer", "uac_answered", "101",
                         "89267654321")
        await place_call(processes, sipp, ports, "uas_busy", "uac_rejected",
                         "+7-916-123-45-67", "101")
        await place_call(processes, sipp, ports, "uas_answer", "uac_answered", "89161234567",
                         "101")
        await place_call(processes, sipp, ports, "uas_noanswer", "uac_rejected", "89031112233",
                         "101")

        async def all_ended() -> bool:
            return await Call.filter(state="ended").count() == 4

        await until(all_ended, "four ended calls", processes)
        assert await Call.all().count() == 4
        assert await Interaction.filter(kind="call").count() == 4
        assert await Client.all().count() == 3

        async def entries(phone: str) -> tuple[int, list[dict[str, Any]]]:
            found = await api.get("/api/lookup", params={"phone": phone},
                                  headers=manager["headers"])
            assert found.status == 200, phone
            card = await found.json()
            resp = await api.get(f"/api/clients/{card['id']}/timeline",
                                 headers=manager["headers"])
            return card["id"], (await resp.json())["items"]

        anna, calls = await entries("+79161234567")
        assert [(e["direction"], e["status"]) for e in calls] == [("in", "completed"),
                                                                   ("in", "busy")]
        assert 0 <= calls[0]["meta"]["duration"] <= 5
        assert calls[0]["meta"]["extension"] == "101"
        missed_id, [missed] = await entries("8 903 111-22-33")
        assert (missed["direction"], missed["status"]) == ("in", "missed")
        _, [outbound] = await entries("+79267654321")
        assert (outbound["direction"], outbound["status"]) == ("out", "completed")
        assert outbound["meta"]["extension"] == "101" and outbound["meta"]["duration"] >= 0
        sip_ids = {e["meta"]["call_id"] for e in (*calls, missed, outbound)}
        assert len(sip_ids) == 4 and all("@127.0.0.1" in c for c in sip_ids)

        # the missed call's call-back is open; the full hub runs its scheduler, which fires
        # it at once (due from the missed call) and tells the manager on the stream
        resp = await api.get("/api/reminders", headers=manager["headers"])
        [reminder] = [r for r in (await resp.json())["items"] if r["origin"] == "missed_call"
                      and r["status"] in ("pending", "fired")]
        assert reminder["client_id"] == missed_id and reminder["count"] == 1

        # the screen pop saw every call ring, with the hub's card
        ringing: dict[str, Any] = {}
        due: list[dict[str, Any]] = []
        deadline = time.monotonic() + DEADLINE
        fired = lambda: {(e["reminder"]["id"], e["client"]["id"]) for e in due}  # noqa: E731
        while ((set(ringing) != sip_ids or (reminder["id"], missed_id) not in fired())
               and time.monotonic() < deadline):
            event = await ws.receive_json(timeout=DEADLINE)
            if event["type"] == "call.ringing":
                ringing[event["interaction"]["meta"]["call_id"]] = event["client"]
            elif event["type"] == "reminder.due":
                due.append(event)
        assert set(ringing) == sip_ids
        # (the rejected call's reminder may have fired too before the answered call closed it)
        assert (reminder["id"], missed_id) in fired()
        assert {c["id"] for c in ringing.values()} >= {anna, missed_id}
        assert all(c["phones"] for c in ringing.values())
    finally:
        await ws.close()
        await processes.stop_all()


@pytest.mark.parametrize("trouble", ["wrong secret", "hub down"])
async def test_calls_go_through_when_the_hub_refuses_or_is_down(
    aiohttp_server: Any, make_settings: Any, orm: None, processes: Processes, trouble: str,
) -> None:
    kamailio, sipp = _tools()
    app = create_app(make_settings(telephony={"kamailio": {"secret": "the-hub-secret"}}),
                     manage_db=False)
    server = await aiohttp_server(app, host="127.0.0.1")
    ports = dict(zip(("kamailio", "uas", "uac", "closed"), _free_udp_ports(4), strict=True))
    hub_url = str(server.make_url("/webhooks/telephony/kamailio"))
    if trouble == "hub down":  # a TCP port nobody listens on
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            hub_url = f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/telephony/kamailio"
    await start_kamailio(processes, kamailio, ports["kamailio"], ports["uas"], hub_url,
                         "not-the-hub-secret")
    started = time.monotonic()
    await place_call(processes, sipp, ports, "uas_busy", "uac_rejected", "89161234567", "101")
    assert time.monotonic() - started < 10
    log = processes.log("kamailio")
    if trouble == "wrong secret":
        assert "hub: invite of" in log and "not accepted: HTTP 401" in log, log
    else:
        assert "hub: invite of" in log and "cannot reach the hub (curl error 7)" in log, log
    assert await Call.all().count() == 0 and await Client.all().count() == 0
    await processes.stop_all()
