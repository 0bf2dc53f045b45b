"""Operator subcommands, one module per concern."""
