"""The demo: simulated scikit-learn models writing prediction logs the exporter watches."""
