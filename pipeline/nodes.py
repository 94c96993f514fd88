"""Node ids of the tfxp DAG that the summary, the report and the benches read outputs of (no TFX import)."""
# The ExampleGen's id whatever the input format (CSV columnar or stock, Parquet, TFRecord, BigQuery).
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
TRAINER = "Trainer"
TRANSFORM = "Transform"
EVALUATOR = "Evaluator"
DATA_GATE = "DataGate"
PUSHER = "Pusher"
