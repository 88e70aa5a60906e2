"""The `tracewire` command: every command and group, in the order `--help` lists them."""

from __future__ import annotations

import sys

import typer

from app.cli import audit, directory, ops
from app.core.config import ConfigurationError

cli = typer.Typer(
    help="Tracewire: interagency alerts on weapons that may reach terrorists.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's local variables would print passwords and database URLs.
    pretty_exceptions_show_locals=False,
)
# Registered here rather than beside each function so that this list is the command
# table (README) and its order is the order of `tracewire --help`.
cli.command()(ops.migrate)
cli.command()(ops.serve)
cli.command()(ops.worker)
cli.command("create-admin")(ops.create_admin)
cli.command()(ops.demo)
cli.command()(ops.openapi)
cli.command("export-stix")(directory.export_stix)
cli.command("backup")(ops.backup_command)
cli.command("restore")(ops.restore_command)
cli.add_typer(audit.audit_cli, name="audit")
cli.add_typer(directory.agencies_cli, name="agencies")
cli.add_typer(directory.users_cli, name="users")


def main() -> None:
    """Entry point of the `tracewire` console script."""
    try:
        cli()
    except ConfigurationError as exc:
        # One line per fault, naming the variable; never a value, never a traceback.
        for problem in exc.problems:
            print(f"tracewire: configuration error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
