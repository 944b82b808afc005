"""Feature monitoring: each model's data quality and drift against its reference.

`monitor.Monitor` (the engine's `FeatureMonitor`) fits the `baseline.Baseline` from the
reference (`fitting`), encodes each chunk of rows once (`encoding`), counts them into
the time buckets' counts (`profiling`) and reports a window's data-quality ratios and
drift (`report`); `build` makes every model's monitor from the config and `describe` is
their part of ``ml-model-exporter check``. `exporter.collectors.drift` exports the
reports.
"""
