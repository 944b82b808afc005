"""Exposition: Prometheus collectors that turn state snapshots into /metrics samples."""
