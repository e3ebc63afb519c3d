"""Web plumbing shared by every domain: problem responses, request ids, body limits,
language negotiation and the template environment."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guanxi.core import i18n
from guanxi.core.context import request_id
from guanxi.core.errors import DomainError, FieldError, NotAuthenticated, ValidationFailed
from guanxi.core.i18n import N_
from guanxi.core.messages import ERROR_MESSAGES, PROBLEM_TITLES

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("guanxi.web")
PROBLEM = "application/problem+json"
LANG_COOKIE = "guanxi_lang"


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A database session for one request; services own its transactions.

    Async on purpose: creating a session touches no database, and a sync generator
    dependency would cost two thread-pool hops per request. Closing returns the connection
    to the pool without I/O.
    """
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


async def run_read(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a short read-only database call for a request.

    On the event loop when the settings say reads run inline (SQLite: a WAL reader never
    waits on a lock, and an indexed read costs less than the hop to a worker thread and
    back), in the thread pool otherwise (PostgreSQL, where a read waits on the network).
    """
    if request.app.state.settings.reads_inline:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


def request_language(request: Request) -> str:
    """The user's language: explicit cookie, then the user's setting, then the browser's."""
    cached = getattr(request.state, "lang", None)
    if cached:
        return str(cached)
    settings = request.app.state.settings
    lang = i18n.normalise_language(request.cookies.get(LANG_COOKIE)) or i18n.from_accept_language(
        request.headers.get("accept-language"), settings.default_language
    )
    request.state.lang = lang
    return lang


def choose_language(request: Request, lang: str | None) -> str | None:
    """Apply a public page's ``?lang=`` switch to this request; returns it (for the page to
    remember in the cookie), or None when absent or unknown."""
    chosen = i18n.normalise_language(lang)
    if chosen:
        request.state.lang = chosen
    return chosen


def current_request_id(request: Request) -> str | None:
    """The request id, also after the middleware that set the context variable has exited."""
    state = request.scope.get("state") or {}
    return request_id.get() or state.get("request_id")


def field_errors_from_pydantic(errors: list[Any]) -> list[FieldError]:
    """Turn pydantic's error list into our field errors (the ``body`` prefix dropped)."""
    out = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if loc and loc[0] == "body":
            loc = loc[1:]
        ctx = dict(err.get("ctx") or {})
        out.append(
            FieldError(
                loc or ("body",), str(err.get("type", "value_error")), str(err.get("msg", "")), ctx
            )
        )
    return out


def translate_code(code: str, lang: str, params: dict[str, Any]) -> str | None:
    """The message of an error code in ``lang`` with its parameters filled in (lists
    joined); without a parameter it needs, the text before the first placeholder. None
    for a code that has no message."""
    template = ERROR_MESSAGES.get(code)
    if template is None:
        return None
    values = {
        k: (", ".join(map(str, v)) if isinstance(v, list | tuple) else v) for k, v in params.items()
    }
    try:
        return i18n.gettext(lang, template, **values)
    except (KeyError, IndexError):
        return i18n.gettext(lang, template.split("{")[0].strip())


def translate_field_error(error: FieldError, lang: str) -> str:
    """A field error's message in ``lang``, falling back to the English detail."""
    text = translate_code(error.code, lang, error.params)
    if text is None:
        return error.message if lang == "en" else i18n.gettext(lang, "Invalid value")
    return text


def _first_part(loc: tuple[str | int, ...]) -> str:
    return str(loc[0]) if loc else ""


def field_messages(
    request: Request,
    exc: Exception,
    *,
    domain_field: str = "",
    key: Callable[[tuple[str | int, ...]], str] = _first_part,
) -> dict[str, str]:
    """A refused change as {field: message} in the reader's language, for a form shown
    again with each message beside its field: pydantic's errors, ``ValidationFailed``'s
    field errors (the first per field), or a ``DomainError`` under its ``field`` parameter
    (``domain_field`` when it names none). ``key`` maps an error's location to the form's
    field (by default its first part). Other exceptions are raised again."""
    lang = request_language(request)
    if isinstance(exc, ValidationError):
        errors = field_errors_from_pydantic(list(exc.errors()))
    elif isinstance(exc, ValidationFailed):
        errors = exc.errors
    elif isinstance(exc, DomainError):
        field = str(exc.params.get("field", domain_field))
        params = {k: v for k, v in exc.params.items() if k != "field"}
        return {key((field,)): translate_code(exc.message, lang, params) or exc.message}
    else:
        raise exc
    out: dict[str, str] = {}
    for e in errors:
        out.setdefault(key(e.loc), translate_field_error(e, lang))
    return out


def problem(
    request: Request,
    status: int,
    code: str,
    detail: str | None = None,
    errors: list[FieldError] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """An RFC 9457 problem document in the user's language."""
    lang = request_language(request)
    body: dict[str, Any] = {
        "type": f"https://guanxi.dev/problems/{code}",
        "title": i18n.gettext(lang, PROBLEM_TITLES.get(code, "Bad request")),
        "status": status,
        "code": code,
        "instance": request.url.path,
        "request_id": current_request_id(request),
    }
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = [
            {
                "field": ".".join(str(p) for p in e.loc),
                "loc": list(e.loc),
                "code": e.code,
                "message": translate_field_error(e, lang),
            }
            for e in errors
        ]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and request.url.path != "/openapi.json"


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to a problem document (API) or a page (UI); never a bare 500."""

    @app.exception_handler(NotAuthenticated)
    async def _unauth(request: Request, exc: NotAuthenticated) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)
        resp = problem(request, 401, exc.code)
        resp.headers["WWW-Authenticate"] = "Bearer"
        return resp

    @app.exception_handler(ValidationFailed)
    async def _invalid(request: Request, exc: ValidationFailed) -> Response:
        return problem(request, 422, exc.code, errors=exc.errors)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        errors = None
        code = exc.code
        if exc.status == 409 and "field" in exc.params:
            extra = {k: v for k, v in exc.params.items() if k != "field"}
            errors = [FieldError((exc.params["field"],), exc.message, exc.message, extra)]
        if _wants_html(request) and exc.status in (403, 404):
            from guanxi.web.render import render_error

            return render_error(request, exc.status)
        return problem(request, exc.status, code, errors=errors)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> Response:
        return problem(
            request, 422, "validation_failed", errors=field_errors_from_pydantic(list(exc.errors()))
        )

    @app.exception_handler(ValidationError)
    async def _pydantic_invalid(request: Request, exc: ValidationError) -> Response:
        return problem(
            request, 422, "validation_failed", errors=field_errors_from_pydantic(list(exc.errors()))
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            404: "not_found",
            405: "method_not_allowed",
            413: "body_too_large",
            401: "not_authenticated",
            403: "forbidden",
        }.get(exc.status_code, "bad_request")
        if _wants_html(request) and exc.status_code in (403, 404):
            from guanxi.web.render import render_error

            return render_error(request, exc.status_code)
        return problem(request, exc.status_code, code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        # Logged with the request id and exception type only: messages may carry input values.
        log.error(
            "unhandled %s in %s (request %s)",
            type(exc).__name__,
            request.url.path,
            current_request_id(request),
        )
        return problem(request, 500, "internal_error")


async def read_form(request: Request) -> FormData:
    """The submitted form, parsed (a file part spooled to disk, never held in memory).

    A dependency placed after the permission check: an upload route's body may be large,
    and it is read only for a user allowed to send it.
    """
    return await request.form()


ParsedForm = Annotated[FormData, Depends(read_form)]


# Multipart framing around an uploaded file: boundaries, part headers, the small form fields.
MULTIPART_SLACK = 64 * 1024
FILE_TOO_LARGE = N_("The file is larger than {limit}")


@dataclass(frozen=True)
class BodyLimit:
    """A route's own body limit (see :func:`body_limit`): the route's path, the name of the
    setting holding the largest file, the form field that carries it, and the page shown
    when refused."""

    path: str
    setting: str
    field: str
    page: str | None = None

    def file_bytes(self, request: Request) -> int:
        """The largest file the route takes, from the running app's settings."""
        return int(getattr(request.app.state.settings, self.setting))


# Paths whose bodies may be larger than max_body_bytes (filled in by body_limit). Keyed by
# the exact path, not found through the router: the middleware runs before routing.
_BODY_LIMITS: dict[str, BodyLimit] = {}
# Paths with parameters (``/api/v1/tickets/{ticket_id}/attachments``), matched segment-wise.
_BODY_LIMIT_TEMPLATES: list[tuple[re.Pattern[str], BodyLimit]] = []


def body_limit(limit: BodyLimit) -> Callable[[F], F]:
    """Let the route at ``limit.path`` take a body of up to ``settings.<limit.setting>``
    bytes (plus multipart framing) instead of ``max_body_bytes``: file uploads.

    A larger body is refused before it is read, with a 413 naming ``limit.field`` in the
    user's language: a problem document on the API, the template ``limit.page`` (given
    ``errors``) for a page. The route itself answers a file that is only a little too large
    (within the framing allowance) with :func:`file_too_large`.
    """
    if "{" in limit.path:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(limit.path))
        _BODY_LIMIT_TEMPLATES.append((re.compile(pattern), limit))
    else:
        _BODY_LIMITS[limit.path] = limit

    def mark(endpoint: F) -> F:
        return endpoint

    return mark


def human_bytes(size: int) -> str:
    """A byte count for people: ``2147483648`` -> ``2 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            text = f"{value:.1f}".removesuffix(".0")
            return f"{text} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def stored_file_response(path: Path, *, content_type: str, filename: str) -> FileResponse:
    """An uploaded file sent back as a download: ``Content-Disposition: attachment``, the
    type recorded at upload, ``nosniff`` and a sandboxing content policy, so nothing in it
    is ever run in the browser (tickets' attachments, contracts' documents)."""
    return FileResponse(
        path,
        media_type=content_type,
        filename=filename,
        content_disposition_type="attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-cache",
        },
    )


def file_too_large(request: Request, limit: BodyLimit) -> Response:
    """The answer to a file over ``limit``: the field named, in the user's language."""
    lang = request_language(request)
    message = i18n.gettext(lang, FILE_TOO_LARGE, limit=human_bytes(limit.file_bytes(request)))
    if limit.page is not None and _wants_html(request):
        from guanxi.web.render import render

        return render(request, limit.page, status_code=413, errors={limit.field: message})
    return problem(
        request,
        413,
        "body_too_large",
        detail=message,
        extra={
            "errors": [
                {
                    "field": limit.field,
                    "loc": [limit.field],
                    "code": "file_too_large",
                    "message": message,
                }
            ]
        },
    )


def _route_body_limit(scope: Scope) -> BodyLimit | None:
    """The body limit of the route a request goes to, if it has its own (asked only for
    bodies over the default limit)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :]
    limit = _BODY_LIMITS.get(path) or next(
        (lim for pattern, lim in _BODY_LIMIT_TEMPLATES if pattern.fullmatch(path)), None
    )
    return limit if limit is not None and scope.get("method") == "POST" else None


_AT_END = "guanxi.at_end"


def at_request_end(request: Request, fn: Callable[[], object]) -> None:
    """Call ``fn`` when the request is over: its response sent, or its error answered.

    For a per-request resource opened by a plain dependency (the session of
    ``security.deps.require_read``): a dependency with ``yield`` costs FastAPI a context
    manager and a shielded cancel scope per request, a measurable share of a short read.
    :class:`RequestContextMiddleware` runs these; without it this raises KeyError rather
    than leak.
    """
    request.scope["state"][_AT_END].append(fn)


class RequestContextMiddleware:
    """Per request: an id (``X-Request-ID``) and 413 for oversized bodies.

    The limit is ``max_body_bytes`` except on routes marked with :func:`body_limit`.
    Pure ASGI rather than ``BaseHTTPMiddleware``, which costs a task and a stream per request.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id.set(rid)
        # Also kept on the request state: error handlers outside this middleware read it there.
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        state[_AT_END] = []
        limit = self.max_body_bytes
        route_limit: BodyLimit | None = None
        widened = False

        def widen() -> None:
            # Past the default limit: the route may take more (an upload).
            nonlocal limit, route_limit, widened
            widened = True
            route_limit = _route_body_limit(scope)
            if route_limit is not None:
                limit = route_limit.file_bytes(Request(scope)) + MULTIPART_SLACK

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # The security headers are added outside (core/observe.py), so that this
                # middleware's own answers (413) get them too.
                message["headers"] = [
                    *(message.get("headers") or []),
                    (b"x-request-id", rid.encode("latin-1")),
                ]
            await send(message)

        async def too_large() -> None:
            if route_limit is None:
                await _send_too_large(send, rid)
            else:
                await file_too_large(Request(scope), route_limit)(scope, receive, send_with_id)

        declared = headers.get(b"content-length")
        try:
            if declared is not None and not declared.isdigit():
                await _send_too_large(send, rid)
                return
            if declared is not None and int(declared) > limit:
                widen()
                if int(declared) > limit:
                    await too_large()
                    return
            received = 0

            async def limited_receive() -> Message:
                nonlocal received
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit and not widened:
                        widen()
                    if received > limit:
                        raise _BodyTooLarge
                return message

            try:
                await self.app(scope, limited_receive, send_with_id)
            except _BodyTooLarge:
                await too_large()
        finally:
            try:
                for fn in state.pop(_AT_END, ()):
                    fn()
            finally:
                request_id.reset(token)


class _BodyTooLarge(Exception):
    pass


async def _send_too_large(send: Send, rid: str) -> None:
    body = (
        b'{"type":"https://guanxi.dev/problems/body_too_large","title":"Request body too large",'
        b'"status":413,"code":"body_too_large"}'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", rid.encode("latin-1")),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------- templates


def template_environment() -> Environment:
    """One Jinja environment over every domain's ``templates`` folder plus the shared one."""
    root = resources.files("guanxi")
    folders = [str(root / "web" / "templates")]
    for domain in (
        "customers",
        "shipments",
        "workspace",
        "security",
        "audit",
        "imports",
        "dedupe",
        "quality",
        "tickets",
        "interactions",
        "notify",
        "analytics",
        "training",
        "loyalty",
        "surveys",
        "care",
        "campaigns",
        "contracts",
        "sales",
        "pool",
        "privacy",
    ):
        path = root / domain / "templates"
        if path.is_dir():
            folders.append(str(path))
    env = Environment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fen"] = format_fen
    # [(value, label(value)), ...] for <select> options from enum values.
    env.filters["zip_labels"] = lambda values, label: [(v, label(v)) for v in values]
    return env


def format_fen(value: int | None) -> str:
    """Integer fen as yuan with two decimals (``12345`` -> ``123.45``)."""
    if value is None:
        return ""
    return f"{Decimal(value) / 100:,.2f}"


def local_time(
    value: datetime | None, tz: str = "Asia/Shanghai", fmt: str = "%Y-%m-%d %H:%M"
) -> str:
    """A stored UTC instant shown in the display timezone."""
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(tz)).strftime(fmt)


def iso_date(value: date | None) -> str:
    """A date as ``YYYY-MM-DD`` (empty for none)."""
    return value.isoformat() if value else ""
