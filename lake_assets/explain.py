"""`lake-config explain`: what the pipeline will do with each source table, before anything runs.

    lake-config explain [--config FILE] [--table SOURCE[.TABLE]] [--format text|json]

For every configured source table it reads only the delivered column names (database: the table's
columns through SQLAlchemy `inspect`, or the query's result columns with `WHERE 1=0`; file: the
header / first chunk of the first matching file; API: the first page, nested objects listed as dotted
fields) and reports, per delivered column, the entity column it becomes, the processed-layer
transform (type cast, case and digit rules, null rule) and the masking rule; then the unmapped
columns and where they go, required entity columns the source does not deliver, PII-looking column
names without a masking rule, conflicting renames, the record key and how duplicates are resolved.
A table with `also_feeds` gets one more report per entity it feeds (the same columns, that feed's
renames; unmapped columns are dropped there). A `derived:` table is reported with its inputs and their
delivered columns, its renames and mapping rules, and the required entity columns its query must
return: its own columns exist only when Spark runs the SQL.

Nothing is written: no lake, no warehouse, no cursor, no Spark session. The rules are not restated
here; they are read from the modules that apply them (entities, mapping, masking config, the
standardize defaults, the PII name patterns), so the report follows the code.

Exit status: 0 no errors (warnings allowed), 1 at least one table has an error (source unreachable,
no file, a required column not delivered, two columns mapped to one, PII without a rule while
`masking.on_unknown_pii` is `fail`), 2 usage or config error. Every table is reported even when an
earlier one fails. Database passwords and API tokens are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lake_assets.config import (
    DERIVED_SOURCE,
    ApiSourceConfig,
    ConfigError,
    DatabaseSourceConfig,
    DerivedSourceConfig,
    DerivedTableConfig,
    EntityStandardizeConfig,
    FileSourceConfig,
    PipelineConfig,
    SourceKindConfig,
    TableConfig,
    load_config,
    view_name,
)
from lake_assets.entities import EntitySchema, entity_schema
from lake_assets.ingestion.api_source import APISource
from lake_assets.ingestion.database_source import DatabaseSource
from lake_assets.ingestion.errors import IngestionError, SourceUnavailable
from lake_assets.ingestion.file_source import FileSource
from lake_assets.ingestion.mapping import entity_column, key_columns, mapping_conflicts, to_snake_case
from spark.mapping_rules import nested_path
from spark.pii_detection import Finding, pii_kind_by_name, technique_for
from spark.standardize import DEFAULT_NULL_TOKENS, DEFAULT_TIMESTAMP_FORMATS

# Where a delivered column the entity does not know ends up (processed.py: cast_to_schema passes
# non-entity columns through as trimmed text; the star schema selects entity columns only).
UNMAPPED_DESTINATION = (
    "kept as text in raw, processed and masked (scanned for PII there); not loaded into the star schema"
)


@dataclass
class ColumnReport:
    """One delivered column and what the processed and masked layers do with it."""

    delivered: str
    entity_column: str | None  # None: not an entity column (unmapped)
    processed_name: str  # the column name in processed/masked (snake-cased, renamed)
    entity_type: str | None
    transforms: list[str]
    null_rule: str | None
    masking: str | None  # technique, or None without a rule
    pii_kind: str | None  # the PII kind the processed name (or a nested field) suggests
    nested_fields: list[str] = field(default_factory=list)  # API: dotted fields inside a JSON object


@dataclass
class TableReport:
    """Everything explain knows about one source table; `errors` make the exit status 1."""

    source: str
    table: str
    kind: str
    entity: str
    read_from: str  # where the columns were read (file path, table/query at URL without password, page URL)
    columns: list[ColumnReport] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    missing_required: list[str] = field(default_factory=list)
    not_delivered: list[str] = field(default_factory=list)  # optional entity columns: NULL in processed
    pii_without_rule: list[str] = field(default_factory=list)
    unused_renames: list[str] = field(default_factory=list)
    key: dict[str, Any] = field(default_factory=dict)
    duplicates: dict[str, Any] = field(default_factory=dict)
    standardize: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # "also_feeds": the same rows feeding a further entity; "derived": a `derived:` table (Spark SQL).
    via: str = ""
    inputs: dict[str, list[str]] = field(default_factory=dict)  # derived: input view -> its delivered columns
    renames: dict[str, str] = field(default_factory=dict)  # derived: `columns` (output column -> entity column)

    @property
    def name(self) -> str:
        name = f"{self.source}.{self.table}"
        return f"{name} (also feeds {self.entity})" if self.via == "also_feeds" else name


# --------------------------------------------------------------------------- reading the delivered columns
def _nested_fields(value: Any, prefix: str) -> list[str]:
    """Dotted paths of the leaves of a JSON object (`customer.address.city`); lists are leaves."""
    if not isinstance(value, dict):
        return [prefix]
    paths: list[str] = []
    for key, inner in value.items():
        paths.extend(_nested_fields(inner, f"{prefix}.{key}"))
    return paths or [prefix]


def _file_columns(source: FileSourceConfig, table: TableConfig) -> tuple[list[str], dict[str, list[str]], str]:
    reader = FileSource(source, table)  # type: ignore[arg-type]
    files = reader.list_files()
    if not files:
        raise SourceUnavailable(
            f"no file matches {reader.describe(None)} (check `path` and `pattern`; `{{date}}` is YYYY-MM-DD)"
        )
    first = files[0]
    where = f"{first.path} (first of {len(files)} matching file{'s' if len(files) != 1 else ''})"
    if table.format == "csv":  # type: ignore[union-attr]
        return reader.header(first), {}, where
    # JSON / JSON Lines / Parquet: the columns of the first chunk, exactly as ingestion reads them.
    chunk = next(iter(reader.read(first)), None)
    columns = [c for c in (chunk.rows.column_names if chunk else []) if c != "_source_file"]
    if not columns:
        raise SourceUnavailable(f"{first.path} holds no records to read column names from")
    return columns, {}, where


def _database_columns(
    source: DatabaseSourceConfig, table: TableConfig
) -> tuple[list[str], dict[str, list[str]], str]:
    from sqlalchemy import inspect, text
    from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

    reader = DatabaseSource(source, table)  # type: ignore[arg-type]
    where = _database_origin(reader)
    # The source's own engine (connect timeout, no pool) and its error wording (password hidden).
    engine = reader._engine()
    try:
        if table.table:  # type: ignore[union-attr]
            schema, _, name = table.table.rpartition(".")  # type: ignore[union-attr]
            try:
                columns = [c["name"] for c in inspect(engine).get_columns(name, schema=schema or None)]
            except NoSuchTableError:
                raise SourceUnavailable(
                    f"table {table.table} does not exist at {reader.safe_url} (check `table`; names are "  # type: ignore[union-attr]
                    "case-sensitive where the database quotes them)"
                ) from None
        else:
            sql = f"SELECT * FROM ({table.query.rstrip().rstrip(';')}) q WHERE 1=0"  # type: ignore[union-attr]
            with engine.connect() as connection:
                columns = list(connection.execute(text(sql)).keys())
    except SQLAlchemyError as exc:
        raise reader._fail(exc) from None
    finally:
        engine.dispose()
    return columns, {}, where


def _json_object(value: Any) -> Any:
    """A nested object of an API record, whether still a dict or already JSON text."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _api_columns(source: ApiSourceConfig, table: TableConfig) -> tuple[list[str], dict[str, list[str]], str]:
    # One attempt, no backoff: explain is a quick look; the configured retries apply to real runs.
    quick = source.model_copy(update={"max_retries": 0})
    reader = APISource(quick, table)  # type: ignore[arg-type]
    page = next(reader.pages(None), None)
    records = [r for r in (page.records if page else []) if isinstance(r, dict)]
    where = f"first page of {reader.url.split('?', 1)[0]}"
    if not records:
        raise SourceUnavailable(f"{where} holds no records to read column names from")
    # Top-level keys in order of first appearance over the page: the raw columns ingestion writes.
    columns = list(dict.fromkeys(key for record in records for key in record))
    nested: dict[str, list[str]] = {}
    for column in columns:
        # The source hands nested objects over as exact JSON text, as raw stores them.
        value = next((obj for r in records if isinstance(obj := _json_object(r.get(column)), dict)), None)
        if value is not None:
            nested[column] = _nested_fields(value, column)
    return columns, nested, where


def delivered_columns(source: SourceKindConfig, table: TableConfig) -> tuple[list[str], dict[str, list[str]], str]:
    """(delivered column names, {column: dotted nested fields}, where they were read)."""
    if isinstance(source, DatabaseSourceConfig):
        return _database_columns(source, table)
    if isinstance(source, ApiSourceConfig):
        return _api_columns(source, table)
    return _file_columns(source, table)


def _database_origin(reader: DatabaseSource) -> str:
    """`table s.t at <url without password>`, or the query on one line, shortened."""
    origin = " ".join(reader.origin.split())
    if len(origin) > 100:
        origin = origin[:97] + "..."
    return f"{origin} at {reader.safe_url}"


def _origin(source: SourceKindConfig, table: TableConfig) -> str:
    """Where the columns would be read from, for a table that could not be read (no secrets)."""
    if isinstance(source, DatabaseSourceConfig):
        return _database_origin(DatabaseSource(source, table))  # type: ignore[arg-type]
    if isinstance(source, ApiSourceConfig):
        return f"first page of {APISource(source, table).url.split('?', 1)[0]}"  # type: ignore[arg-type]
    return FileSource(source, table).describe(None)  # type: ignore[arg-type]


def _hide_secrets(message: str, source: SourceKindConfig) -> str:
    """Belt and braces over the sources' own redaction: no message may carry the database password."""
    if isinstance(source, DatabaseSourceConfig):
        secret = DatabaseSource(source, source.tables[0]).url.password
        if secret:
            message = message.replace(str(secret), "***")
    return message


# --------------------------------------------------------------------------- the report
def _transforms(entity: EntitySchema, column: str, spark_type: str, table: TableConfig) -> list[str]:
    """The processed-layer steps applied to one entity column, in order: the table's mapping rules
    (Unix time, scale, value map), then cast_to_schema's."""
    steps = []
    if column in table.timestamp_units:
        steps.append(f"Unix {table.timestamp_units[column]} as UTC")
    if column in table.scale:
        steps.append(f"times {table.scale[column]}")
    if column in table.value_map:
        steps.append(f"value map ({len(table.value_map[column])} values)")
    if spark_type == "string":
        steps += ["trim"]
    elif spark_type in ("timestamp", "date"):
        steps += [f"parse {spark_type}"]
    else:
        steps += [f"cast to {spark_type}"]
    if column in entity.lowercase:
        steps.append("lowercase")
    if column in entity.uppercase:
        steps.append("uppercase")
    if column in entity.digits_only:
        steps.append("digits only")
    return steps


def _null_rule(entity: EntitySchema, rules: EntityStandardizeConfig, column: str) -> str:
    rule = rules.nulls.get(column)
    if column in entity.required:
        if rule is not None and rule.rule == "default":
            return f"default {rule.value!r} (required)"
        return "reject row (required)"
    if rule is None or rule.rule == "keep":
        return "keep NULL"
    if rule.rule == "reject":
        return "reject row"
    return f"default {rule.value!r}"


def _default_technique(column: str, kind: str | None, by: str) -> str:
    """The technique the masked step applies to an unconfigured PII column (`on_unknown_pii: mask`)."""
    # As the masked step would see it: the name's own kind (None for a nested column like `buyer`),
    # plus a value match of `kind` when only the values can show it.
    counts = ((kind, 1),) if kind and by == "values" else ()
    return technique_for(Finding(column, kind or "", by, counts, name_kind=pii_kind_by_name(column)))


def _duplicates(config: PipelineConfig, entity: EntitySchema) -> dict[str, Any]:
    """How processed/<entity> picks one row per dedup key (processed.py + deduplicate_latest)."""
    order = [c for c in (entity.cursor, "_ingested_at") if c]
    feeds = config.tables_for_entity(entity.name)
    # `_source_file` exists in the union as soon as one feed is a file source.
    tie_breakers = ["_source_file"] if any(isinstance(s, FileSourceConfig) for s, _ in feeds) else []
    grain = "every version of a key is kept" if entity.keep_versions and entity.cursor else "one row per key"
    return {
        "dedup_key": list(entity.dedup_key),
        "grain": grain,
        "latest_wins_by": [*order, *tie_breakers, "a hash of the row's values"],
        "feeds": [f"{s.name}.{t.name}" for s, t in feeds],
    }


Delivered = tuple[list[str], dict[str, list[str]], str]


def _read(source: SourceKindConfig, table: TableConfig) -> Delivered | str:
    """The delivered columns, or why they cannot be read (secrets hidden): one table that cannot be read
    must not hide the others."""
    try:
        return delivered_columns(source, table)
    except IngestionError as exc:
        return _hide_secrets(str(exc), source)
    except Exception as exc:  # noqa: BLE001
        return _hide_secrets(f"cannot read the columns: {type(exc).__name__}: {exc}", source)


def explain_table(
    config: PipelineConfig, source: SourceKindConfig, table: TableConfig, delivered: Delivered | str | None = None,
    also_feeds: bool = False,
) -> TableReport:
    """The report of one source table (or, with `also_feeds`, of the view of it feeding a further
    entity); a table that cannot be read gets an error, never an exception. `delivered`: what `_read`
    returned, when the caller has read the columns already."""
    if table.entity is None:  # such a table is explained with the derived tables that read it
        raise ValueError(f"{source.name}.{table.name} feeds no entity: explain it with the derived tables")
    entity = entity_schema(config, table.entity)  # with the configured extra columns
    rules = config.standardize.entities.get(entity.name, EntityStandardizeConfig())
    formats = list(rules.timestamp_formats or config.standardize.timestamp_formats or DEFAULT_TIMESTAMP_FORMATS)
    tokens = list(DEFAULT_NULL_TOKENS if config.standardize.null_tokens is None else config.standardize.null_tokens)
    masking = config.mask_rules_for(entity.name)
    kind = "file"
    if isinstance(source, DatabaseSourceConfig | ApiSourceConfig):
        kind = "database" if isinstance(source, DatabaseSourceConfig) else "api"
    report = TableReport(source.name, table.name, kind, entity.name, read_from="",
                         via="also_feeds" if also_feeds else "")
    report.standardize = {"null_tokens": tokens, "timestamp_formats": formats}
    report.duplicates = _duplicates(config, entity)
    read = _read(source, table) if delivered is None else delivered
    if isinstance(read, str):
        report.read_from = _origin(source, table)
        report.errors.append(read)
        return report
    columns, nested, report.read_from = read

    delivered_entity: dict[str, str] = {}
    for column in columns:
        if column.startswith("_"):
            # Processed keeps `_`-names as they are and treats them as lineage (not mapped, not scanned).
            report.columns.append(ColumnReport(column, None, column, None, [], None, masking.get(column), None))
            report.unmapped.append(column)
            continue
        target = entity_column(table, column)
        pii = pii_kind_by_name(target) or next(
            (k for path in nested.get(column, []) if (k := pii_kind_by_name(to_snake_case(path)))), None
        )
        if target in entity.columns:
            delivered_entity.setdefault(target, column)
            spark_type = entity.columns[target]
            report.columns.append(
                ColumnReport(
                    column, target, target, spark_type, _transforms(entity, target, spark_type, table),
                    _null_rule(entity, rules, target), masking.get(target), pii, nested.get(column, []),
                )
            )
        else:
            # Through also_feeds only the mapped columns feed the entity (processed.py `_mapped`).
            kept = [f"dropped (only mapped columns feed {entity.name})"] if also_feeds else ["trim (kept as text)"]
            report.columns.append(
                ColumnReport(
                    column, None, target, None, kept, None, masking.get(target), pii, nested.get(column, []),
                )
            )
            report.unmapped.append(column)
            if also_feeds:
                continue  # dropped here; the table's own report judges its PII
        if pii and target not in masking:
            report.pii_without_rule.append(target)

    # Generated keys and nested paths are built by the processed layer (docs/reference.md, Mapping rules).
    derived = table.derived_columns()
    report.missing_required = [c for c in entity.required if c not in delivered_entity and c not in derived]
    # Nested paths (`parent_customer.id`) read a field of a delivered JSON column: {name: that column}.
    snake = [to_snake_case(c) for c in columns]
    paths = {name: found[0] for name in table.columns if (found := nested_path(name, snake))}
    read_from = set(paths.values())
    report.not_delivered = [
        c for c in entity.columns
        if c not in delivered_entity and c not in entity.required and c not in {table.columns[n] for n in paths}
    ]
    report.unused_renames = [
        f"{name} -> {target}" for name, target in table.columns.items()
        if name not in paths and not any(name in (c, to_snake_case(c)) for c in columns)
    ]
    delivered_key = key_columns(table, columns)
    report.key = {
        "delivered": delivered_key,
        "entity": list(entity.key),
        "configured": bool(table.key),
        "entity_cursor": entity.cursor,
        "cursor_delivered_as": delivered_entity.get(entity.cursor) if entity.cursor else None,
    }

    # Errors: the run would fail or lose every row.
    for column in report.missing_required:
        candidates = [c for c in report.unmapped if not c.startswith("_")]
        report.errors.append(
            f"required entity column {column!r} is not delivered: every row goes to quarantine "
            f"('required column {column} is absent'); add `<delivered column>: {column}` under `columns`"
            + (f" (unmapped delivered columns: {', '.join(candidates)})" if candidates else "")
        )
    for target, sources in mapping_conflicts(table, columns).items():
        report.errors.append(
            f"{', '.join(sources)} all map to {target!r}: ingestion fails; rename one of them in `columns`"
        )
    missing_key = [c for c in delivered_key if c not in columns]
    if missing_key:
        report.errors.append(f"`key` names {missing_key}, which the source does not deliver")
    incremental = getattr(table, "incremental", None)
    if incremental is not None:
        cursor = incremental.cursor if isinstance(source, DatabaseSourceConfig) else incremental.field
        if cursor not in columns:
            message = f"incremental cursor {cursor!r} is not a delivered column"
            (report.errors if isinstance(source, DatabaseSourceConfig) else report.warnings).append(message)
    for column in report.pii_without_rule:
        hint = (
            f"add masking.columns.{column} (or masking.entities.{entity.name}.{column}) with a technique, "
            f"or map it to an entity column"
        )
        by = next(c for c in report.columns if c.processed_name == column)
        if pii_kind_by_name(column):
            why = f"{column}: name looks like {by.pii_kind} and has no masking rule"
            fail = f"masked/{entity.name} fails"
            mask = f"masked/{entity.name} masks it with {_default_technique(column, by.pii_kind, 'name')}"
        else:
            # Only a nested field's name shows it: the masked step can find it by its values alone.
            path = next(f for f in by.nested_fields if pii_kind_by_name(to_snake_case(f)))
            why = f"{column}: nested field {path} looks like {by.pii_kind} and {column} has no masking rule"
            fail = f"masked/{entity.name} fails if its values show it, else it stays unmasked"
            mask = (
                f"masked/{entity.name} masks it with {_default_technique(column, by.pii_kind, 'values')} "
                "if its values show it, else it stays unmasked"
            )
        if config.masking.on_unknown_pii == "fail":
            report.errors.append(f"{why}: {fail}; {hint}")
        else:
            report.warnings.append(f"{why}: {mask} (on_unknown_pii: mask); {hint}")

    # Warnings: worth a look, the run goes on.
    for rename in report.unused_renames:
        report.warnings.append(f"rename {rename} matches no delivered column")
    for name, target in table.columns.items():
        if target not in entity.columns:
            report.warnings.append(
                f"rename {name} -> {target}: {target!r} is not a column of entity {entity.name} "
                f"({', '.join(entity.columns)}); the column stays unmapped"
            )
    if entity.cursor and entity.cursor not in delivered_entity and entity.cursor not in entity.required:
        report.warnings.append(
            f"{entity.cursor!r} (the entity's version order) is not delivered: duplicates are resolved by "
            "ingest time only"
        )
    for column, fields in nested.items():
        if to_snake_case(column) in read_from or also_feeds:
            continue  # mapped field by field through nested paths (or reported by the table's own report)
        report.warnings.append(
            f"{column} is a nested object, stored as one JSON text column; its fields ({', '.join(fields[:6])}"
            f"{', ...' if len(fields) > 6 else ''}) are not mapped one by one"
        )
    return report


def explain_derived(config: PipelineConfig, table: DerivedTableConfig, also_feeds: bool = False) -> TableReport:
    """The report of a derived table (or of its view feeding a further entity through `also_feeds`).

    Its columns exist only once Spark runs its SQL, which explain does not do: the report lists the
    inputs with their delivered columns, the `columns` renames and mapping rules, and the entity columns
    the query must return."""
    entity = entity_schema(config, table.entity)
    inputs = config.derived_inputs(table)
    report = TableReport(
        DERIVED_SOURCE, table.name, "derived", entity.name,
        read_from=f"Spark SQL over {', '.join(view_name(s.name, t.name) for s, t in inputs)} when "
        f"raw/{DERIVED_SOURCE}/{table.name} runs",
        via="also_feeds" if also_feeds else "derived", renames=dict(table.columns),
    )
    report.duplicates = _duplicates(config, entity)
    report.key = {"delivered": list(table.key), "entity": list(entity.key), "configured": bool(table.key),
                  "entity_cursor": entity.cursor, "cursor_delivered_as": None}
    for source, input_table in inputs:
        name = view_name(source.name, input_table.name)
        if isinstance(source, DerivedSourceConfig):
            report.inputs[name] = []  # an earlier derived table: its columns are known when it runs
            continue
        read = _read(source, input_table)
        if isinstance(read, str):
            report.errors.append(f"input {name} ({source.name}.{input_table.name}): {read}")
        else:
            report.inputs[name] = [c for c in read[0] if not c.startswith("_")]
    for column, target in table.columns.items():
        if target not in entity.columns:
            report.warnings.append(f"rename {column} -> {target}: {target!r} is not a column of entity {entity.name}")
    built = set(table.columns.values()) | table.derived_columns()
    needed = [c for c in entity.required if c not in built]
    rules = [f"{option}.{column}" for option in ("timestamp_units", "scale", "value_map")
             for column in getattr(table, option)]
    report.warnings.append(
        "its output columns are known only when the SQL runs (explain runs nothing): the query must return "
        + (f"{', '.join(needed)} by name" if needed else "no further required column by name")
        + (f"; renamed by `columns`: {', '.join(f'{k} -> {v}' for k, v in table.columns.items())}"
           if table.columns else "")
        + (f"; mapping rules: {', '.join(rules)}" if rules else "")
        + f"; other {entity.name} columns it returns by name are typed and loaded, the rest kept as text"
    )
    return report


def _wanted(only: set[str], source: str, table: str) -> bool:
    return not only or source in only or f"{source}.{table}" in only


def explain(config: PipelineConfig, only: Sequence[str] = ()) -> list[TableReport]:
    """Reports for every configured table (or those named `source` / `source.table` in `only`, derived
    tables as `derived.<name>`): each source table, then one report per entity it also feeds
    (`also_feeds`, from the same read of its columns), then the derived tables."""
    wanted = set(only)
    reports: list[TableReport] = []
    for source in config.sources:
        for table in source.tables:
            # A table without entity is an input of derived tables only: explained with them.
            if table.entity is None or not _wanted(wanted, source.name, table.name):
                continue
            read = _read(source, table)
            reports.append(explain_table(config, source, table, read))
            for view in table.feeds()[1:]:
                # The view's own key is the entity's, through its `columns` (the table's `key` is not its).
                reports.append(explain_table(config, source, view.model_copy(update={"key": []}), read, True))
    for derived in config.derived:
        if _wanted(wanted, DERIVED_SOURCE, derived.name):
            reports.append(explain_derived(config, derived))
            reports.extend(explain_derived(config, view, also_feeds=True) for view in derived.feeds()[1:])
    return reports


# --------------------------------------------------------------------------- rendering
def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def render_text(reports: list[TableReport]) -> str:
    out: list[str] = []
    for report in reports:
        status = "ERROR" if report.errors else "ok"
        out.append(f"{report.name} -> entity {report.entity}  [{report.kind}, {status}]")
        out.append(f"  read from: {report.read_from}")
        for view, columns in report.inputs.items():
            out.append(f"  input {view}: {', '.join(columns) or '(known when it runs)'}")
        if report.columns:
            rows = [["delivered column", "entity column", "type", "transform", "null rule", "masking"]]
            for c in report.columns:
                target = c.entity_column or f"(unmapped: {c.processed_name})"
                masking = c.masking or (f"NONE (looks like {c.pii_kind})" if c.pii_kind else "-")
                rows.append(
                    [c.delivered, target, c.entity_type or "text", "; ".join(c.transforms) or "-",
                     c.null_rule or "-", masking]
                )
            out.extend(_grid(rows))
            destination = (f"dropped: only mapped columns feed {report.entity}" if report.via == "also_feeds"
                           else UNMAPPED_DESTINATION)
            out.append(f"  unmapped: {', '.join(report.unmapped) or 'none'}"
                       + (f" -> {destination}" if report.unmapped else ""))
            out.append(f"  required entity columns missing: {', '.join(report.missing_required) or 'none'}")
            out.append(f"  optional entity columns not delivered (NULL): {', '.join(report.not_delivered) or 'none'}")
            out.append(f"  PII-looking columns without a masking rule: {', '.join(report.pii_without_rule) or 'none'}")
            key = report.key
            out.append(
                f"  key: {', '.join(key['delivered'])} -> {', '.join(key['entity'])}"
                + (" (configured `key`)" if key["configured"] else "")
            )
        dup = report.duplicates
        out.append(
            f"  duplicates: one row per ({', '.join(dup['dedup_key'])}); of rows sharing it the "
            f"greatest {', then '.join(dup['latest_wins_by'])} wins"
            + (f" (rows of {', '.join(dup['feeds'])} compete)" if len(dup["feeds"]) > 1 else "")
            + (f"; {dup['grain']}" if dup["grain"] != "one row per key" else "")
        )
        if report.columns:
            out.append(
                f"  values: trimmed; {', '.join(repr(t) for t in report.standardize['null_tokens'])} read as NULL; "
                "casts drop currency symbols and thousands separators; a value that does not parse sends the "
                f"row to quarantine/processed/{report.entity}"
            )
        if report.columns and any(c.entity_type in ("timestamp", "date") for c in report.columns):
            out.append(f"  timestamp formats (first match wins): {' | '.join(report.standardize['timestamp_formats'])}")
        out.extend(f"  error: {e}" for e in report.errors)
        out.extend(f"  warning: {w}" for w in report.warnings)
        out.append("")
    failed = [r.name for r in reports if r.errors]
    out.append(
        f"{len(reports)} table(s) explained, {len(failed)} with errors" + (f": {', '.join(failed)}" if failed else "")
    )
    return "\n".join(out)


def render_json(reports: list[TableReport]) -> str:
    return json.dumps(
        {"tables": [{"name": r.name, **asdict(r)} for r in reports], "errors": sum(bool(r.errors) for r in reports)},
        indent=2,
    )


# --------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lake-config",
        description="Inspect the pipeline configuration against the real sources. Nothing is written.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    explain_cmd = commands.add_parser(
        "explain",
        help="show how each source table maps onto its entity (the first step for a new source)",
        description="For every source table: the delivered columns (read from the database, the first "
        "matching file, or the API's first page) -> entity column, transform and masking rule; unmapped "
        "columns and where they go; required columns missing; PII-looking columns without a masking rule; "
        "the key and how duplicates are resolved; the same for each entity it also feeds (also_feeds). "
        "For every derived table: its inputs and their columns, its renames and the entity columns its "
        "query must return. Only what is needed to learn the column names is read; nothing is written.",
        epilog="Exit status: 0 no errors, 1 some table has an error (unreachable source, no file, a required "
        "column not delivered, conflicting renames, unmasked PII while on_unknown_pii is fail), 2 usage or "
        "config error. Passwords and tokens are never printed.",
    )
    explain_cmd.add_argument(
        "--config", default=None, metavar="FILE",
        help="pipeline config file (default: $LAKE_CONFIG, else the bundled sample config)",
    )
    explain_cmd.add_argument(
        "--table", action="append", default=[], metavar="SOURCE[.TABLE]",
        help="explain only this source or source.table (derived tables: derived or derived.NAME; "
        "repeatable; default: every table)",
    )
    explain_cmd.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"lake-config: {exc}", file=sys.stderr)
        return 2
    known = {s.name for s in config.sources} | {f"{s.name}.{t.name}" for s in config.sources for t in s.tables}
    if config.derived:
        known |= {DERIVED_SOURCE} | {f"{DERIVED_SOURCE}.{t.name}" for t in config.derived}
    unknown = sorted(set(args.table) - known)
    if unknown:
        print(f"lake-config: unknown table(s) {unknown}; configured: {sorted(known)}", file=sys.stderr)
        return 2
    reports = explain(config, args.table)
    print(render_json(reports) if args.format == "json" else render_text(reports))
    return 1 if any(r.errors for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
