"""``guanxi audit``: verify the hash chain and its anchors; write an anchor."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command group to the main command."""
    group = typer.Typer(help="The audit log.", no_args_is_help=True)
    app.add_typer(group, name="audit")

    @group.command("verify")
    def verify_command() -> None:
        """Walk the hash chain and check every anchor; exit 1 if any row was altered,
        removed or inserted, or the chain was rewritten or truncated after an anchor."""
        from guanxi.audit.anchor import anchor_dir, read_anchors, verify_anchors
        from guanxi.audit.service import verify
        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core.db import make_sessionmaker

        anchors, problems = read_anchors(anchor_dir(get_settings()))
        session = make_sessionmaker(_engine())()
        try:
            count, chain_problems = verify(session)
            problems = chain_problems + problems + verify_anchors(session, anchors)
        finally:
            session.close()
        if problems:
            for p in problems[:50]:
                console.print(f"[red]entry {p.entry_id}[/red]: {p.problem}")
            console.print(
                f"[red]audit chain BROKEN[/red]: {len(problems)} problem(s) in {count} entries"
            )
            raise typer.Exit(1)
        console.print(f"[green]audit chain intact[/green]: {count} entries, {len(anchors)} anchors")

    @group.command("anchor")
    def anchor_command(
        log: Annotated[
            bool, typer.Option("--log", help="also write the anchor to the log")
        ] = False,
    ) -> None:
        """Append the chain's head (entry id, hash, count, time) to the anchor file."""
        from guanxi.audit.anchor import anchor_dir, write_anchor
        from guanxi.cli import _engine
        from guanxi.config import get_settings
        from guanxi.core.db import make_sessionmaker

        directory = anchor_dir(get_settings())
        with make_sessionmaker(_engine())() as session:
            head = write_anchor(session, directory, to_log=log)
        if head is None:
            console.print("the audit log is empty: nothing to anchor")
            return
        console.print(f"anchored entry {head.entry_id} ({head.count} entries) in {directory}")
        sys.stdout.write(head.line() + "\n")
