"""The service's log lines (issue 9): ACCOUNTS_API_LOG_FORMAT=text (the default, for a terminal)
or json (one JSON object per line, for a log collector), for every line a process writes: the
access log (observation.py), the application's, uvicorn's and other libraries' warnings.

`serve` and `worker` call `configure`; `serve` also hands `config` to uvicorn, which applies
it again in every worker it starts. Both formats redact, in the finished line, `?token=` values
and anything shaped like a JWT: a secret that reached a message by any path is still not
written. Request bodies (passwords, tokens) are never logged.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import time
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

TEXT = "text"
JSON = "json"
FORMATS = (TEXT, JSON)

_TOKEN = re.compile(r"(?<=[?&]token=)[^&\s\"\\]+")
# three base64url parts, the first a JSON object's start (`{"` is `eyJ`)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
FILTERED = "[FILTERED]"

_format = TEXT


def redact(line: str) -> str:
    return _JWT.sub(FILTERED, _TOKEN.sub(FILTERED, line))


# the last whole second written, and how (issue 10: a line per request, many per second)
_second: tuple[int, str] = (-1, "")


def _utc(record: logging.LogRecord) -> str:
    """`2025-01-31T12:00:00.000Z`: the record's time in UTC, to the millisecond (truncated)."""
    global _second
    whole = int(record.created)
    if whole != _second[0]:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int(record.msecs):03d}Z"


def _lean_records() -> None:
    """Records without what no line here shows: the caller's source line (a stack walk per
    record), thread and process names (the logging HOWTO's "Optimization"). Called where
    a formatter of this module is made: in every process that writes these lines, uvicorn's
    workers included, which apply `config` without `configure`."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False


class TextFormatter(logging.Formatter):
    """`2025-01-31T12:00:00.000Z INFO accounts_api.access: <message>`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        _lean_records()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonLineFormatter(JsonFormatter):
    """One object per line: time, level, logger, message, process, and the record's extra
    fields (the access log's request fields)."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message", "process"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # Python 3.12's task name, and uvicorn's copy of its message in terminal colours
            reserved_attrs=[*RESERVED_ATTRS, "taskName", "color_message"],
        )
        _lean_records()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def config(log_format: str) -> dict[str, Any]:
    """A logging.config.dictConfig: one stderr handler on the root logger in `log_format`;
    the service's and uvicorn's information lines, other libraries' warnings."""
    formatter = JsonLineFormatter if log_format == JSON else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        # uvicorn's defaults give its loggers handlers of their own: theirs go to the root's
        "loggers": {
            name: {"handlers": [], "level": "INFO", "propagate": True}
            for name in ("accounts_api", "uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


def configure(log_format: str) -> None:
    global _format
    logging.config.dictConfig(config(log_format))
    _format = log_format


_cli = logging.getLogger("accounts_api.cli")


def say(message: str) -> None:
    """A command's message to its operator: a plain line on stderr, or, once JSON logs are
    configured, a log line like every other."""
    if _format == JSON:
        _cli.info(message)
    else:
        print(message, file=sys.stderr, flush=True)
