"""TFX's StatisticsGen with a Parquet payload read without tfx-bsl's per-row read telemetry."""
