"""Pure PySpark transformations (DataFrame in, DataFrame out). No Dagster imports here."""
