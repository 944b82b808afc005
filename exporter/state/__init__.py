"""State: what the exporter remembers between rows: time-bucketed windows, the outcome
join, label caps, and the checkpoint that carries them across restarts.

The checkpoint's file format is here: the atomic file and its reader's rules
(checkpoint.py) and the encoding of the values inside it (checkpoint_values.py). When the
engine saves, what it saves and how it resumes are in ``exporter.ingest``
(checkpoint_policy.py, checkpoint_content.py)."""
