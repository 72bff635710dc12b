"""The grammar of a configured aggregation metric, `fn(column)`: one definition for the config's
validation (lake_assets/config/standardize.py) and the Spark aggregation (spark/aggregations.py). No Spark import."""

import re

METRIC_FUNCTIONS = ("sum", "count", "min", "max", "avg", "count_distinct")
METRIC = re.compile(rf"^\s*({'|'.join(METRIC_FUNCTIONS)})\(\s*([A-Za-z_][A-Za-z0-9_]*|\*)\s*\)\s*$")
