"""`GET /api/clients/export?format=csv|xlsx`: every card in a file, so a team is never locked
in (the same content as `hub export clients`)."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from hub.errors import ValidationError
from hub.importing import export_rows, write_xlsx

routes = web.RouteTableDef()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@routes.get("/api/clients/export")
async def export_clients(request: web.Request) -> web.Response:
    """CSV (UTF-8 with a BOM, `;`: how Excel opens it) or XLSX, as an attachment."""
    kind = request.query.get("format", "csv")
    if kind not in ("csv", "xlsx"):
        raise ValidationError("format: use csv or xlsx", field="format")
    header, rows = await export_rows()
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
