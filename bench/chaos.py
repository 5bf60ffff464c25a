"""Faults: does the hub lose or double anything when its processes, its database and its mail
servers fail under it? Three runs, each with its own `hub serve` child (see tests/chaos/):

1. calls: signed generic-webhook call lifecycles (ringing → answered → ended, or ringing →
   ended missed/busy, some transferred, some with a recording), 20 % of the deliveries repeated,
   all shuffled, several in flight, each retried like a provider until a 2xx; meanwhile the hub
   is SIGKILLed and started again twice and PostgreSQL is restarted once (-m immediate);
2. e-mail: messages delivered over LMTP into a private Dovecot while the hub reads it over
   IMAP; the connection is cut, refused for a while, and Dovecot restarted;
3. offers: sent while the SMTP server is down, the hub SIGKILLed while they wait, the server
   then answering 451 for a while, then 250.

Then each checks the database: one timeline entry per call / message / offer, in its final
state, one card per caller or sender, every event, one open call-back reminder per caller who
is owed one, every offer received by the SMTP server exactly once.

    python bench/chaos.py                  # a private PostgreSQL cluster (needs its binaries)
    python bench/chaos.py --sqlite         # hub on a SQLite file (no database restart)
    python bench/chaos.py --quick          # small, ~1 minute

Exit status 1 when any run found something lost or doubled. Needs root (or a user that can
run initdb), and Dovecot for the e-mail run (dovecot-imapd dovecot-lmtpd).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the repository root: the chaos harness lives in tests/

from tests.chaos.calls import CallsRun, run_calls  # noqa: E402
from tests.chaos.faults import PrivatePostgres, Report, private_postgres_possible  # noqa: E402
from tests.chaos.mailrun import MailRun, run_mail  # noqa: E402
from tests.chaos.offers import OffersRun, run_offers  # noqa: E402
from tests.mailservers import binary  # noqa: E402


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="hub on a SQLite file")
    parser.add_argument("--quick", action="store_true", help="a small run of each")
    parser.add_argument("--events", type=int, default=10_000, help="call deliveries in all")
    parser.add_argument("--calls", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--messages", type=int, default=1_000)
    parser.add_argument("--offers", type=int, default=40)
    parser.add_argument("--pg-restart-mode", choices=("fast", "immediate"), default="immediate")
    parser.add_argument("--only", choices=("calls", "mail", "offers"), action="append")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.events, args.calls, args.messages, args.offers = 1_000, 100, 100, 8
    return args


async def main(args: argparse.Namespace) -> int:
    only = set(args.only or ("calls", "mail", "offers"))
    work = Path(tempfile.mkdtemp(prefix="hub-chaos-"))
    pg: PrivatePostgres | None = None
    if not args.sqlite:
        if (why := private_postgres_possible()) is not None:
            print(f"no private PostgreSQL cluster: {why} (use --sqlite)")
            return 2
        pg = PrivatePostgres()
        pg.start()
    reports: list[Report] = []
    started = time.monotonic()
    try:
        async def url(name: str) -> str:
            if pg is not None:
                return await pg.create_database(name)
            return f"sqlite://{work / (name + '.db')}"

        print(f"work directory {work} (hub logs); database: "
              f"{'private PostgreSQL cluster on port ' + str(pg.port) if pg else 'SQLite'}",
              flush=True)
        if "calls" in only:
            faults = ("kill", "pg-restart", "kill") if pg else ("kill", "kill")
            run = CallsRun(calls=args.calls, total=args.events, concurrency=args.concurrency,
                           faults=faults, pg_restart_mode=args.pg_restart_mode, seed=args.seed)
            reports.append(await _timed(run_calls(await url("calls"), work, run, pg)))
        if "mail" in only:
            if binary("dovecot") and binary("doveadm"):
                run_m = MailRun(messages=args.messages, seed=args.seed,
                                faults=("cut", "refuse", "dovecot-restart", "cut"))
                reports.append(await _timed(run_mail(await url("mail"), work, run_m)))
            else:
                print("e-mail run skipped: Dovecot is not installed")
        if "offers" in only:
            run_o = OffersRun(offers=args.offers)
            reports.append(await _timed(run_offers(await url("offers"), work, run_o)))
    finally:
        if pg is not None:
            pg.stop()
    ok = all(r.ok for r in reports)
    print(f"\n{'PASS' if ok else 'FAIL'}: {sum(r.ok for r in reports)} of {len(reports)} runs "
          f"passed in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


async def _timed(run: object) -> Report:
    began = time.monotonic()
    report: Report = await run  # type: ignore[misc]
    report.figure(f"run took {time.monotonic() - began:.1f} s")
    print(report.text(), flush=True)
    return report


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse())))
