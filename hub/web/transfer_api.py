"""Bringing a client base in and out through the API: `POST /api/imports` (admins) takes a
spreadsheet and imports it in the background, as `hub import clients` does, with its progress
and report at `GET /api/imports/{id}`; `GET /api/clients/export?format=csv|xlsx` gives every
card in a file, so a team is never locked in."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, web

from hub.db import now
from hub.errors import MediaTypeError, NotFoundError, TooLargeError, ValidationError
from hub.importing import export_rows, import_rows, write_xlsx
from hub.keys import SETTINGS
from hub.models import ImportJob
from hub.privacy import audit
from hub.sheets import SheetReader, parse_map
from hub.web.auth import current_manager, require_admin
from hub.web.inputs import path_id

log = logging.getLogger("hub.web.imports")
routes = web.RouteTableDef()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MAX_IMPORT_BYTES = 50 * 1024 * 1024
SUFFIXES = (".xlsx", ".xlsm", ".csv", ".txt")
REPORT_LINES = 1000  # the report keeps this many row lines; the counts are always whole
RUNNING: web.AppKey[set[asyncio.Task[None]]] = web.AppKey("imports_running")


@routes.post("/api/imports")
async def start_import(request: web.Request) -> web.Response:
    """multipart/form-data: `file` (.xlsx or .csv), optional `dry_run` and `map`; 202 with the
    job at once, the import runs in the background."""
    admin = require_admin(request)
    if not request.content_type.startswith("multipart/"):
        raise MediaTypeError("expected multipart/form-data with a `file` part")
    work = Path(tempfile.mkdtemp(prefix="crm-hub-import-"))
    try:
        path, options = await _receive(request, work)
        mapping = parse_map(options["map"]) if options.get("map") else None
        sheet = SheetReader(path, mapping)
    except ValueError as exc:
        shutil.rmtree(work, ignore_errors=True)
        raise ValidationError(f"file: {exc}", field="file") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    dry_run = options.get("dry_run", "").lower() in ("1", "true", "yes", "on")
    job = await ImportJob.create(status="running", file_name=options["file_name"][:255],
                                 dry_run=dry_run, expected=sheet.expected, by=admin,
                                 created_at=now())
    tasks = request.app[RUNNING]
    task = asyncio.create_task(_run(job.id, sheet, work, request.app[SETTINGS].phone_region,
                                    dry_run))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return web.json_response(_job(job), status=202)


@routes.get(r"/api/imports/{id:\d+}")
async def get_import(request: web.Request) -> web.Response:
    """The job: status (running, done, failed), rows done of about how many, the report."""
    require_admin(request)
    job = await ImportJob.get_or_none(id=path_id(request))
    if job is None:
        raise NotFoundError("no such import")
    return web.json_response(_job(job))


async def _receive(request: web.Request, work: Path) -> tuple[Path, dict[str, str]]:
    """The uploaded file, saved under `work`, and the other form fields."""
    reader = await request.multipart()
    options: dict[str, str] = {}
    path: Path | None = None
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            name = Path(part.filename or "upload").name
            suffix = Path(name).suffix.lower()
            if suffix not in SUFFIXES:
                raise ValueError(f"unsupported file type {suffix or '(none)'}: "
                                 "use .xlsx or .csv")
            path, options["file_name"] = work / f"upload{suffix}", name
            size = 0
            with path.open("wb") as out:
                while chunk := await part.read_chunk(1 << 16):
                    size += len(chunk)
                    if size > MAX_IMPORT_BYTES:
                        raise TooLargeError(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
                    out.write(chunk)
        elif part.name in ("dry_run", "map"):
            options[part.name] = (await part.text())[:2000]
    if path is None:
        raise ValueError("a `file` part is required")
    return path, options


async def _run(job_id: int, sheet: SheetReader, work: Path, region: str, dry_run: bool) -> None:
    async def progress(done: int) -> None:
        await ImportJob.filter(id=job_id).update(done=done)

    try:
        with sheet:
            report = await import_rows(sheet, region, dry_run=dry_run, progress=progress)
        lines = [o.describe() for o in (report.every if dry_run else report.with_notes)]
        await ImportJob.filter(id=job_id).update(
            status="done", done=report.rows, finished_at=now(), report={
                "summary": report.summary(), "rows": report.rows, "new": report.new,
                "merged": report.merged, "unchanged": report.unchanged,
                "rejected": report.rejected,
                "skipped": [f"row {n}: skipped: {why}" for n, why in sheet.skipped],
                "lines": lines[:REPORT_LINES], "more_lines": max(len(lines) - REPORT_LINES, 0),
            })
    except asyncio.CancelledError:
        await ImportJob.filter(id=job_id).update(
            status="failed", error="the hub stopped during the import; the rows done so far "
            "are stored, and importing the file again is safe", finished_at=now())
        raise
    except Exception as exc:  # noqa: BLE001 - the job says why; the hub goes on
        log.exception("import %s failed", job_id)
        await ImportJob.filter(id=job_id).update(status="failed", error=str(exc)[:2000],
                                                 finished_at=now())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _job(job: ImportJob) -> dict[str, Any]:
    return {
        "id": job.id, "status": job.status, "file_name": job.file_name, "dry_run": job.dry_run,
        "expected": job.expected, "done": job.done, "report": job.report, "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@routes.get("/api/clients/export")
async def export_clients(request: web.Request) -> web.Response:
    """CSV (UTF-8 with a BOM, `;`: how Excel opens it) or XLSX, as an attachment."""
    kind = request.query.get("format", "csv")
    if kind not in ("csv", "xlsx"):
        raise ValidationError("format: use csv or xlsx", field="format")
    header, rows = await export_rows()
    # the whole client base leaving the hub: who took it, and when, is kept
    await audit(current_manager(request), "clients.exported", "client", None,
                {"format": kind, "rows": len(rows)})
    if kind == "csv":
        text = io.StringIO()
        writer = csv.writer(text, delimiter=";")
        writer.writerow(header)
        writer.writerows(rows)
        body, content_type = ("\ufeff" + text.getvalue()).encode(), "text/csv"
    else:
        buffer = io.BytesIO()
        write_xlsx(buffer, header, rows)
        body, content_type = buffer.getvalue(), XLSX
    return web.Response(body=body, content_type=content_type, charset="utf-8" if
                        kind == "csv" else None, headers={
                            "Content-Disposition": f'attachment; filename="clients.{kind}"'})


async def stopping_imports(app: web.Application) -> AsyncIterator[None]:
    """A cleanup_ctx entry: imports still running when the hub stops are cancelled (and say
    so on their job)."""
    tasks: set[asyncio.Task[None]] = set()
    app[RUNNING] = tasks
    yield
    running = [*tasks]
    for task in running:
        task.cancel()
    if running:
        await asyncio.gather(*running, return_exceptions=True)
