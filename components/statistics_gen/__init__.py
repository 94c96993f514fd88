"""TFX's StatisticsGen with each split's statistics in one Beam combine, and a Parquet payload read without
tfx-bsl's per-row read telemetry."""
