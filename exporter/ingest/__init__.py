"""Ingest: tail the logs, cut them into lines, parse rows, and drive the loop
that feeds the state.

The checkpoint's ingest half is here: when the engine saves and what it does when a write
fails (checkpoint_policy.py), and what a checkpoint holds and how the engine resumes from
it (checkpoint_content.py). The file format is in ``exporter.state`` (checkpoint.py, the
file; checkpoint_values.py, the values inside it)."""
