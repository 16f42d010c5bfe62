"""The ``orgmem`` command line.

Lineage, setup, store and database commands live in this package's own modules; the commands
other parts of the system deliver are mounted from ``orgmem/cli/<name>.py`` (each exports ``app``
or ``command``, see ``common.mount``) as ``orgmem <name>``.
An ``OrgmemError`` anywhere becomes its message on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from orgmem.cli import (
    audit,
    consolidate,
    conversations,
    corrections,
    db,
    demo,
    export,
    forget,
    governance,
    jobs,
    keys,
    lineage,
    memory,
    model,
    org,
    receipts,
    schedule,
    scheduler,
    serve,
    setup,
    source,
    store,
    sync,
    worker,
)
from orgmem.cli import eval as eval_
from orgmem.cli.common import mount
from orgmem.errors import OrgmemError

if TYPE_CHECKING:  # the Context TyperGroup's methods take: Typer's own copy of click's
    from typer._click.core import Context


class OrgmemGroup(TyperGroup):
    """Turns user errors (and database connection errors) into a message and an exit code."""

    def invoke(self, ctx: Context) -> Any:
        from sqlalchemy.exc import OperationalError

        try:
            return super().invoke(ctx)
        except OrgmemError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OperationalError as exc:
            typer.echo(f"error: database error: {exc.orig}", err=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="orgmem",
    cls=OrgmemGroup,
    help="Each company's own continually trained model: memory layers on a frozen base, with lineage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help="Log level on stderr (default: WARNING, or ORGMEM_LOG_LEVEL)."),
    ] = None,
) -> None:
    import os

    from orgmem.config import get_settings
    from orgmem.logs import configure_logging
    from workers.queue import install_celery_queue

    install_celery_queue()  # this process queues jobs for the workers (imports Celery on the first send)
    cfg = get_settings()
    level = log_level or (cfg.log_level if "ORGMEM_LOG_LEVEL" in os.environ else "WARNING")
    configure_logging(level, as_json=cfg.log_json)


setup.register(app)
app.add_typer(org.app, name="org")
lineage.register(app)
app.add_typer(store.app, name="store")
app.add_typer(db.app, name="db")

# Each of these modules exports ``app`` (a group) or ``command`` (one command); see ``common.mount``.
mount(app, source)
mount(app, sync)
mount(app, consolidate)
mount(app, jobs, alias="job")
mount(app, schedule)
mount(app, forget)
mount(app, conversations)
mount(app, receipts, alias="receipt")
mount(app, corrections)
mount(app, audit)
mount(app, governance)
mount(app, keys)
mount(app, serve)
mount(app, worker)
mount(app, scheduler)
mount(app, eval_)
mount(app, memory)
mount(app, demo)
mount(app, model)
mount(app, export)

if __name__ == "__main__":
    app()
