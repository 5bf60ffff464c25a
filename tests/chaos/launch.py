"""`python -m tests.chaos.launch ARGS...` runs `hub ARGS...`, with the outbox's waits shortened
when CHAOS_OUTBOX_BACKOFF_S (the first retry's wait, 30 s in the product) or
CHAOS_OUTBOX_LEASE_S (how long a row stays `sending` before it is taken back, 2 minutes) is
set: the hub has no setting for them, and a chaos run cannot wait minutes."""

from __future__ import annotations

import os
import sys
from datetime import timedelta

from hub import outbox
from hub.cli import main

if backoff := os.environ.get("CHAOS_OUTBOX_BACKOFF_S"):
    outbox.BACKOFF_BASE_S = float(backoff)
if lease := os.environ.get("CHAOS_OUTBOX_LEASE_S"):
    outbox.LEASE = timedelta(seconds=float(lease))

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
