"""Thin typer commands: parse arguments, call the library, print. No logic here."""
