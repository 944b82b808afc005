"""ml-model-exporter: a Prometheus exporter for machine-learning models in production."""

__version__ = "0.1.0"
