"""Ingest: tail the logs, cut them into lines, parse rows, and drive the loop
that feeds the state."""
