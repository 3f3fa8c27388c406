"""What every subcommand shares: the terminal it writes to and how it reads the settings."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from services.tracker.settings import Settings

# Logs and pipes get a wide, fixed width so tables are not squeezed into 80 columns.
console = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)


def load_settings() -> Settings:
    try:
        return Settings()
    except Exception as error:  # pydantic's message names the variable and the problem
        err.print(f"[red]Invalid configuration:[/red] {error}")
        raise typer.Exit(2) from None
