"""LOG_FORMAT=json: one JSON object a line (time, level, logger, message, operation_id)."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

# Log lines name their operation as "operation <32 hex>" (or pass extra={"operation_id": ...}).
_OPERATION = re.compile(r"\boperation\s+`?([0-9a-f]{32})\b")


class JsonFormatter(logging.Formatter):
    """Formats a record (already scrubbed by RedactSecrets) as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        operation_id = getattr(record, "operation_id", None)
        if operation_id is None:
            found = _OPERATION.search(message)
            operation_id = found.group(1) if found else None
        if operation_id:
            entry["operation_id"] = operation_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)
