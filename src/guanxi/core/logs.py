"""Structured logs (structlog): JSON lines in production, a readable console in development.

Every line carries the request id of the request it belongs to (``core.context``). The
standard library's loggers (uvicorn, SQLAlchemy, APScheduler, our own ``getLogger`` calls)
go through the same processors, so one handler on the root logger sees everything.

Personal data is kept out in three layers: log calls name ids, never values; the access
line has the route template, not the path or query string; and :func:`redact`, the last
processor before rendering, masks anything shaped like a mainland mobile number, an e-mail
address, an 18-character ID number or a unified social credit code in any string value.
Exceptions are logged as their type and stack frames in JSON: a message may quote input
(a database error carries the statement's parameters).
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import traceback
from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from guanxi.core.context import request_id

if TYPE_CHECKING:
    # Only for types: a uvicorn worker process applies logging_config() (importing this
    # module) before it answers its supervisor's health pings, so this module stays light.
    from guanxi.config import Settings

# Phone: a mainland mobile (1[3-9] + 9 digits), with an optional +86 / 86 prefix and the
# usual separators; not inside a longer run of digits (ids, timestamps in ms).
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9](?:[- ]?[0-9]{4}){2}(?![0-9])")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# Resident ID number: 17 digits and a check digit or X; USCC: 18 characters of its
# alphabet (no I, O, Z, S, V). Neither inside a longer alphanumeric run (request ids are
# 32 lower-case hex characters).
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_USCC = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-HJ-NP-RTUWXY]{2}[0-9]{6}[0-9A-HJ-NP-RTUWXY]{10}(?![0-9A-Za-z])"
)
_PATTERNS = (
    (_EMAIL, "[email]"),
    (_ID_NUMBER, "[id-number]"),
    (_USCC, "[uscc]"),
    (_MOBILE, "[phone]"),
)
# Loggers that would write personal data at their usual levels: SQLAlchemy's engine logs
# statements and their parameters at INFO, httpx the full URL of each call (an SMS
# gateway's query string carries the phone number), multipart the form fields at DEBUG.
_QUIET = {
    "sqlalchemy": "WARNING",
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "urllib3": "WARNING",
    "multipart": "WARNING",
    "python_multipart": "WARNING",
    "asyncio": "WARNING",
    "apscheduler": "INFO",
    "aiosmtpd": "WARNING",
    "mail.log": "WARNING",
    "jieba": "WARNING",
    "faker": "WARNING",
    "py4j": "WARNING",
}
ACCESS_LOGGER = "guanxi.access"


# Every pattern above needs an "@" or three digits in a row: one search rules most
# strings out (the access line's method, route, level) instead of four.
_CANDIDATE = re.compile(r"@|[0-9]{3}")


def redact(text: str) -> str:
    """``text`` with every phone number, e-mail, ID number and USCC masked."""
    if _CANDIDATE.search(text) is None:
        return text
    for pattern, mask in _PATTERNS:
        if pattern.search(text):
            text = pattern.sub(mask, text)
    return text


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    # Anything else is rendered as text by the renderer: mask that text.
    return redact(str(value))


def redact_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The last line of defence: personal identifiers masked in every value."""
    return {key: _redact_value(value) for key, value in event_dict.items()}


def add_request_id(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The id of the request being served, if any (the access line brings its own)."""
    rid = request_id.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    return event_dict


def _exc_info(value: Any) -> tuple[type[BaseException], BaseException, TracebackType | None] | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value
    if value:
        info = sys.exc_info()
        return info if info[0] is not None else None
    return None


def safe_exceptions(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """An exception as its type and frames (file, line, function), without its message."""
    info = _exc_info(event_dict.pop("exc_info", None))
    if info is None:
        return event_dict
    exc_type, _exc, tb = info
    event_dict["exception"] = f"{exc_type.__module__}.{exc_type.__qualname__}"
    event_dict["stack"] = [
        f"{frame.filename}:{frame.lineno} {frame.name}" for frame in traceback.extract_tb(tb)
    ]
    return event_dict


def full_exceptions(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """An exception as the whole traceback text (development; still redacted after)."""
    info = _exc_info(event_dict.pop("exc_info", None))
    if info is not None:
        event_dict["exception"] = "".join(traceback.format_exception(*info))
    return event_dict


def _drop_color_message(
    _logger: WrappedLogger, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # uvicorn adds a copy of each message with terminal colour codes as an extra.
    event_dict.pop("color_message", None)
    return event_dict


def _shared_processors() -> list[Processor]:
    """What every line gets, from structlog or from the standard library."""
    return [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def wants_json(settings: Settings) -> bool:
    """JSON lines unless the format is ``console``, or ``auto`` in development."""
    if settings.log_format == "auto":
        return settings.env != "development"
    return settings.log_format == "json"


def make_handler(*, json_lines: bool, stream: IO[str] | None = None) -> logging.Handler:
    """The one handler of the root logger; also points structlog's loggers at it.

    Named in :func:`logging_config` as a factory, so uvicorn's worker processes (which
    apply that configuration themselves) get structlog configured too.
    """
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests configure the pipeline more than once in one process.
        cache_logger_on_first_use=False,
    )
    renderer: Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _drop_color_message,
            safe_exceptions if json_lines else full_exceptions,
            redact_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    return handler


def logging_config(settings: Settings, *, stream: IO[str] | None = None) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the process, also given to uvicorn as its
    ``log_config`` (so each of its worker processes applies it)."""
    handler: dict[str, Any] = {
        "()": "guanxi.core.logs.make_handler",
        "json_lines": wants_json(settings),
    }
    if stream is not None:
        handler["stream"] = stream
    loggers: dict[str, Any] = {name: {"level": level} for name, level in _QUIET.items()}
    # uvicorn's own loggers pass to the root handler; its access log is off (it writes the
    # raw path with the query string): the access line is ours (core/observe.py).
    loggers["uvicorn"] = {"handlers": [], "propagate": True, "level": "INFO"}
    loggers["uvicorn.error"] = {"handlers": [], "propagate": True, "level": "INFO"}
    loggers["uvicorn.access"] = {"handlers": [], "propagate": False, "level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"guanxi": handler},
        "root": {"handlers": ["guanxi"], "level": settings.log_level.upper()},
        "loggers": loggers,
    }


def configure(settings: Settings, *, stream: IO[str] | None = None) -> None:
    """Route every log line of this process through the structured pipeline."""
    logging.config.dictConfig(logging_config(settings, stream=stream))


access_log = logging.getLogger(ACCESS_LOGGER)
"""The one line per request (core/observe.py): a standard-library logger whose fields come
as ``extra`` (cheap when INFO is off; ExtraAdder turns them into the line's keys)."""
