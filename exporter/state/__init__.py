"""State: what the exporter remembers between rows: time-bucketed windows, the outcome
join, label caps, and the checkpoint that carries them across restarts."""
