"""``guanxi dedupe``: score duplicates, list the queue, merge and undo from the shell."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from guanxi.audit.service import Actor
from guanxi.core.errors import DomainError
from guanxi.security.models import User
from guanxi.security.permissions import Permission
from guanxi.security.service import actor_of, has_permission

console = Console(stderr=True)


def _session() -> Session:
    from guanxi.cli import _engine
    from guanxi.core.db import make_sessionmaker

    return make_sessionmaker(_engine())()


def _actor(session: Session, username: str | None) -> Actor:
    if username is None:
        return Actor.system("cli")
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        console.print(f"[red]--as: no active user {username!r}[/red]")
        raise typer.Exit(2)
    if not has_permission(user, Permission.customer_merge):
        console.print(f"[red]--as: {username} may not merge customers[/red]")
        raise typer.Exit(2)
    return actor_of(user)


def register(app: typer.Typer) -> None:
    """Add the ``dedupe`` command group to the main command."""
    group = typer.Typer(help="Find and merge duplicate customers.", no_args_is_help=True)
    app.add_typer(group, name="dedupe")

    @group.command("run")
    def run_command(
        incremental: Annotated[
            bool, typer.Option(help="Only customers added since the last run.")
        ] = False,
        auto_threshold: Annotated[
            float, typer.Option(help="Merge without review at or above this probability.")
        ] = 0.99,
        review_threshold: Annotated[
            float, typer.Option(help="Queue for review at or above this probability.")
        ] = 0.8,
        no_merge: Annotated[bool, typer.Option(help="Score and queue only.")] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        as_user: Annotated[str | None, typer.Option("--as", help="Run as this user.")] = None,
    ) -> None:
        """Score candidate pairs; merge the sure ones, queue the grey zone for review."""
        from guanxi.dedupe.enums import RunMode
        from guanxi.dedupe.service import RunProgress, run

        session = _session()
        try:
            actor = _actor(session, as_user)
            with console.status("de-duplicating") as status:
                result = run(
                    session,
                    actor=actor,
                    mode=RunMode.incremental if incremental else RunMode.full,
                    auto_threshold=auto_threshold,
                    review_threshold=review_threshold,
                    auto_merge=not no_merge,
                    progress=RunProgress(stage=lambda s: status.update(f"de-duplicating: {s}")),
                )
            out = {
                "run_id": result.id,
                "mode": result.mode,
                "customers": result.customers,
                "candidates": result.candidates,
                "auto_merged": result.auto_merged,
                "queued": result.queued,
                "seconds": round(result.seconds or 0.0, 2),
            }
        except DomainError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from exc
        finally:
            session.close()
        if as_json:
            sys.stdout.write(json.dumps(out) + "\n")
        else:
            console.print(
                f"{out['customers']:,} customers scored in {out['seconds']}s: "
                f"{out['candidates']:,} likely pairs, {out['auto_merged']:,} merged "
                f"automatically, {out['queued']:,} waiting for review (guanxi dedupe queue)"
            )

    @group.command("queue")
    def queue_command(
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """List the pairs waiting for review, most probable first."""
        from guanxi.dedupe.service import list_pairs

        session = _session()
        try:
            pairs, total = list_pairs(session, limit=limit)
        finally:
            session.close()
        if as_json:
            rows = [
                {
                    "pair_id": p.id,
                    "left_id": p.left_id,
                    "right_id": p.right_id,
                    "probability": round(p.probability, 4),
                    "agreed": list(p.agreed),
                }
                for p in pairs
            ]
            sys.stdout.write(json.dumps({"total": total, "pairs": rows}) + "\n")
            return
        table = Table(title=f"{total:,} pairs waiting for review")
        for column in ("pair", "customer", "customer", "probability", "agreed"):
            table.add_column(column)
        for p in pairs:
            table.add_row(
                str(p.id),
                f"#{p.left_id} {p.left_name}",
                f"#{p.right_id} {p.right_name}",
                f"{p.probability:.3f}",
                ", ".join(p.agreed),
            )
        Console().print(table)

    @group.command("merge")
    def merge_command(
        survivor: Annotated[int, typer.Argument(help="Customer id that stays.")],
        duplicate: Annotated[int, typer.Argument(help="Customer id merged into it.")],
        take: Annotated[
            list[str] | None, typer.Option(help="Field to take from the duplicate (repeat).")
        ] = None,
        as_user: Annotated[str | None, typer.Option("--as")] = None,
    ) -> None:
        """Merge one customer into another (blank fields filled unless --take is given)."""
        from guanxi.dedupe.service import merge_customers

        session = _session()
        try:
            merge = merge_customers(
                session,
                survivor_id=survivor,
                duplicate_id=duplicate,
                fields=take,
                actor=_actor(session, as_user),
            )
            console.print(f"merged #{duplicate} into #{survivor} (merge {merge.id})")
        except DomainError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from exc
        finally:
            session.close()

    @group.command("undo")
    def undo_command(
        merge_id: Annotated[int, typer.Argument(help="The merge to undo.")],
        as_user: Annotated[str | None, typer.Option("--as")] = None,
    ) -> None:
        """Undo a merge: both records and every moved row back as they were."""
        from guanxi.dedupe.service import undo_merge

        session = _session()
        try:
            result = undo_merge(session, merge_id=merge_id, actor=_actor(session, as_user))
            console.print(f"merge {merge_id} undone: #{result.merge.merged_id} is a customer again")
            if result.kept_columns:
                console.print(f"edited since the merge, kept: {', '.join(result.kept_columns)}")
        except DomainError as exc:
            console.print(f"[red]{exc.message}[/red]")
            raise typer.Exit(2) from exc
        finally:
            session.close()
