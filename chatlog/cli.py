"""``chatlog``: the operator CLI. Every subcommand reads the same CHATLOG_* settings.

Each subcommand lives in its own module as ``add_arguments(parser)`` and
``main(settings, args) -> int``; this file only dispatches. A failure exits non-zero
with a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from shared.settings import Settings, SettingsError


@dataclass(frozen=True)
class Subcommand:
    """One operator subcommand and the module that implements it."""

    name: str
    help: str
    module: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("run", "run the ingestor and the analytics API together in the foreground",
               "chatlog.commands.run"),
    Subcommand("compress", "compress every day file past its compress-after age now",
               "chatlog.commands.lifecycle"),
    Subcommand("retention", "delete every day file past its retention now", "chatlog.commands.lifecycle"),
    Subcommand("rebuild-stats", "recompute statistics from the day files", "chatlog.commands.rebuild_stats"),
    Subcommand("backup", "online backup of the SQLite database", "chatlog.commands.backup"),
    Subcommand("restore", "restore the SQLite database from a backup file", "chatlog.commands.backup"),
    Subcommand("verify", "check every day file and the database; non-zero on damage",
               "chatlog.commands.verify"),
    Subcommand("erase-user", "remove one user's data everywhere", "chatlog.commands.erase"),
    Subcommand("import", "import existing guide-format log files (JSONL, .gz, .zst, stdin)",
               "chatlog.commands.import_logs"),
    Subcommand("report", "a period's report: usage, quality, FAQ, gaps, suggestions, alerts, conversations to review",
               "chatlog.commands.report"),
    Subcommand("migrate-to-postgres",
               "load this data directory's store (SQLite + day files) into PostgreSQL as this node",
               "chatlog.commands.migrate_postgres"),
    Subcommand("faq", "export the FAQ (question groups with their answers) as markdown, json or csv",
               "chatlog.commands.faq"),
)


class CommandError(Exception):
    """A subcommand failed; the message is shown to the operator."""


def date_argument(text: str) -> date:
    """An argparse type: a YYYY-MM-DD date, or a clear error naming the bad text."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every available subcommand."""
    parser = argparse.ArgumentParser(prog="chatlog", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        module = importlib.import_module(command.module)
        sub_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        module.add_arguments(command.name, sub_parser)
        sub_parser.set_defaults(handler=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, read settings, run one subcommand."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"chatlog: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(settings, args))
    except CommandError as exc:
        print(f"chatlog {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
