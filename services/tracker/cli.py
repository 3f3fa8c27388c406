"""The ``tracker`` command: run the embedded broker and the worker, load data, look at it.
The subcommands live in ``services/tracker/commands/``; this module puts them together in
the order ``tracker --help`` lists them."""

from __future__ import annotations

import logging
import sys

import typer

from services.tracker.commands import analyst, cluster, loading, local
from services.tracker.commands.console import err
from services.tracker.errors import TrackerError

cli = typer.Typer(
    help="Event-sourced tracker of bilateral trade, energy and defense commitments.\n\n"
    "Configuration comes from TRACKER_* environment variables; `tracker config` shows them.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
cli.add_typer(local.broker_cli, name="broker")
cli.add_typer(cluster.cluster_cli, name="cluster")
cli.command()(local.worker)
cli.command()(local.up)
cli.command()(local.down)
cli.command("produce")(loading.produce_file)
cli.command()(analyst.status)
cli.command()(analyst.reconcile)
cli.command()(local.config)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        cli()
    except TrackerError as error:
        err.print(f"[red]Error:[/red] {error}", soft_wrap=True)  # one line, however long
        sys.exit(1)


if __name__ == "__main__":
    main()
