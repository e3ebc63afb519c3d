"""``guanxi user unlock | reset-second-factor``: the way back in when no
administrator can sign in (the last one locked out, or their phone lost)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

console = Console(stderr=True)


def _run(username: str, action: Callable[[Any, Any, Any], str]) -> None:
    from sqlalchemy import select

    from guanxi import domains
    from guanxi.audit.service import Actor
    from guanxi.config import get_settings
    from guanxi.core.db import make_engine, make_sessionmaker
    from guanxi.security import crypto
    from guanxi.security.models import User

    settings = get_settings()
    domains.load()
    crypto.configure(settings)
    session = make_sessionmaker(make_engine(settings.database_url))()
    try:
        user_id = session.scalar(select(User.id).where(User.username == username))
        if user_id is None:
            console.print(f"[red]no user {username!r}[/red]")
            raise typer.Exit(1)
        console.print(action(session, user_id, Actor.system("cli")))
    finally:
        session.close()


def _group(app: typer.Typer) -> typer.Typer:
    for info in app.registered_groups:
        if info.name == "user" and info.typer_instance is not None:
            return info.typer_instance
    raise RuntimeError("the user command group is missing")


def register(app: typer.Typer) -> None:
    """Add the account-recovery commands to ``guanxi user``."""
    group = _group(app)

    @group.command("unlock")
    def unlock_command(username: str) -> None:
        """Lift a lockout after too many failed sign-ins (audited)."""
        from guanxi.security import service

        def act(session: Any, user_id: int, actor: Any) -> str:
            service.unlock(session, user_id=user_id, actor=actor)
            return f"[green]{username} unlocked[/green]"

        _run(username, act)

    @group.command("reset-second-factor")
    def reset_command(username: str) -> None:
        """Remove a user's second factor (lost phone); they enrol again at the next
        sign-in, and their sessions and tokens end (audited)."""
        from guanxi.security import service

        def act(session: Any, user_id: int, actor: Any) -> str:
            service.reset_second_factor(session, user_id=user_id, actor=actor)
            return f"[green]second factor of {username} removed[/green]"

        _run(username, act)
