"""TFX's Transform with the preprocessing_fn traced once for the inspections made before the analysis, and a
Parquet payload read without tfx-bsl's per-row telemetry."""
