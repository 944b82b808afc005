"""The HTTP server for /metrics: connection limits, and TLS and basic auth from a
Prometheus web config."""
