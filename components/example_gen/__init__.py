"""A columnar CSV ExampleGen: CsvExampleGen's outputs at pyarrow's speed."""
