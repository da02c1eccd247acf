"""CSV points uploaded from the browser, kept in a private temporary directory under names the server chooses.

The browser refers to an upload by its id only: no path it sends ever reaches the file system.
"""

from __future__ import annotations

import re
import secrets
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from trainlab.data import load_csv
from trainlab.errors import BadInput
from trainlab.web.limits import RequestRefused

KEEP = 20  # uploads kept per server; the oldest is forgotten first


@dataclass(frozen=True)
class Upload:
    id: str
    path: Path
    filename: str  # a safe version of the browser's file name, for exports
    rows: int
    columns: list[str]


class Uploads:
    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self._dir = tempfile.TemporaryDirectory(prefix="trainlab-uploads-")
        self._items: OrderedDict[str, Upload] = OrderedDict()

    def add(self, content: bytes, filename: str) -> Upload:
        """Store ``content`` if it parses as a CSV of two numeric columns x1, x2 and a column y."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename or "points.csv").name)[:60] or "points.csv"
        if not safe.lower().endswith(".csv"):
            safe += ".csv"
        upload_id = secrets.token_hex(8)
        path = Path(self._dir.name) / f"{upload_id}.csv"
        path.write_bytes(content)
        try:
            _, y, columns, _ = load_csv(path, "y")
        except BadInput as e:
            path.unlink()
            raise RequestRefused(str(e).replace(str(path), safe)) from None
        problem = None
        if len(columns) != 2:
            problem = (f"{safe}: the playground draws 2-D points: expected columns x1, x2, y "
                       f"(got {', '.join([*columns, 'y'])})")
        elif len(y) > self.max_rows:
            problem = f"upload: at most {self.max_rows} rows in the playground (got {len(y)})"
        if problem is not None:  # refused files are not kept
            path.unlink()
            raise RequestRefused(problem)
        item = Upload(upload_id, path, safe, len(y), columns)
        self._items[upload_id] = item
        while len(self._items) > KEEP:
            _, old = self._items.popitem(last=False)
            old.path.unlink(missing_ok=True)
        return item

    def get(self, upload_id: object) -> Upload:
        if not isinstance(upload_id, str) or upload_id not in self._items:
            raise RequestRefused("upload: unknown or expired CSV upload; upload the file again")
        return self._items[upload_id]

    def close(self) -> None:
        self._dir.cleanup()
