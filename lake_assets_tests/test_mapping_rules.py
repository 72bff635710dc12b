"""Mapping rules (spark/mapping_rules.py) and their config: generated keys, nested paths, Unix
timestamps, scales and value maps, `also_feeds`. Values are shaped like real exports and APIs; the
expected results are written out by hand from the inputs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from lake_assets.config import ApiEndpointConfig, FileSourceConfig, FileTableConfig, PipelineConfig
from lake_assets.ingestion.file_source import FileSource
from lake_assets.ingestion.text import records_as_text
from spark.mapping_rules import (
    absent_key_parts,
    apply_value_rules,
    composite_key,
    generate_keys,
    map_columns,
)
from spark.standardize import DEFAULT_NULL_TOKENS, cast_to_schema, snake_case_columns

TOKENS = (*DEFAULT_NULL_TOKENS, "NA")


def _frame(spark, header: list[str], rows: list[tuple]):
    return spark.createDataFrame(rows, ", ".join(f"`{h}` string" for h in header))


# --------------------------------------------------------------------------- keys
def test_composite_key_joins_parts_injectively_and_is_null_when_a_part_is_missing(spark) -> None:
    df = _frame(spark, ["invoice_no", "stock_code"], [
        ("536365", "85123A"),
        (" 536365 ", "71053 "),  # padded, as fixed-width exports write
        ("a|b", "c"),  # a separator inside a value must not make two lines one key
        ("a", "b|c"),
        ("a\\", "|c"),
        ("536366", None),
        ("536367", "  "),
        ("NA", "22752"),
    ])
    keys = [r["k"] for r in df.select(composite_key(["invoice_no", "stock_code"], TOKENS).alias("k")).collect()]
    assert keys[:2] == ["536365|85123A", "536365|71053"]
    assert len(set(keys[2:5])) == 3, keys[2:5]
    assert keys[5:] == [None, None, None]


def test_generate_keys_from_snake_case_source_columns_and_file_rows(spark) -> None:
    raw = spark.createDataFrame(
        [("536365", "85123A", "s3://drop/2011-12-01/sales.csv", 1), ("536365", "71053", "/d/sales.csv", 2)],
        "`InvoiceNo` string, `StockCode` string, _source_file string, _row_number bigint",
    )
    out = generate_keys(
        snake_case_columns(raw), {"sale_line_id": ["InvoiceNo", "Stock Code"], "order_id": "file_row"}, TOKENS
    )
    assert [(r["sale_line_id"], r["order_id"]) for r in out.collect()] == [
        ("536365|85123A", "sales.csv:1"), ("536365|71053", "sales.csv:2")]
    # Rows without row numbers get no key (they are quarantined as missing it); absent parts are named.
    old = generate_keys(raw.drop("_row_number"), {"sale_line_id": "file_row"})
    assert [r["sale_line_id"] for r in old.collect()] == [None, None]
    assert absent_key_parts(["invoice_no"], {"sale_line_id": ["InvoiceNo", "StockCode"]}) == [
        "generate.sale_line_id: source column stock_code is not delivered"]


def test_file_source_numbers_the_rows_of_each_file(tmp_path: Path) -> None:
    folder = tmp_path / "2011-12-01"
    folder.mkdir()
    # A quoted newline and a blank line: the number counts rows, not physical lines.
    (folder / "sales.csv").write_text('InvoiceNo,Description\n1,"two\nlines"\n\n2,b\n3,c\n', encoding="utf-8")
    source = FileSourceConfig(name="retail", kind="file", path=str(tmp_path), tables=[
        FileTableConfig(name="sales", entity="location", pattern="{date}/sales.csv",
                        generate={"location_id": "file_row"})])
    reader = FileSource(source, source.tables[0])
    (file,) = reader.list_files("2011-12-01")
    rows = [r for chunk in reader.read(file) for r in chunk.rows.to_pylist()]
    assert [(r["InvoiceNo"], r["_row_number"]) for r in rows] == [("1", 1), ("2", 2), ("3", 3)]


# --------------------------------------------------------------------------- value rules
def test_scale_is_exact_decimal_arithmetic(spark) -> None:
    df = _frame(spark, ["unit_price"], [("255",), ("-1",), (" 1,999 ",), ("33",), ("",), ("abc",), (None,)])
    scaled = apply_value_rules(df, scale={"unit_price": Decimal("0.01")})
    typed = cast_to_schema(scaled, {"unit_price": "decimal(12,2)"}).collect()
    assert [r["unit_price"] for r in typed] == [
        Decimal("2.55"), Decimal("-0.01"), Decimal("19.99"), Decimal("0.33"), None, None, None]
    # Text that is no number is passed on unchanged, so typing reports it instead of a silent NULL.
    assert [r["_parse_errors"] for r in typed][5] == ["unparsable unit_price"]
    assert sum(r["unit_price"] or 0 for r in typed) == Decimal("22.86")
    # Mills to units: the typed decimal(12,2) rounds half up to the cent.
    mills = apply_value_rules(_frame(spark, ["unit_price"], [("2555",), ("2554",)]),
                              scale={"unit_price": Decimal("0.001")})
    assert [r["unit_price"] for r in cast_to_schema(mills, {"unit_price": "decimal(12,2)"}).collect()] == [
        Decimal("2.56"), Decimal("2.55")]


def test_value_map_matches_the_trimmed_value_exactly_and_passes_the_rest(spark) -> None:
    df = _frame(spark, ["country"], [("United Kingdom",), (" EIRE ",), ("eire",), ("France",), (None,)])
    out = apply_value_rules(df, value_map={"country": {"United Kingdom": "GB", "EIRE": "IE"}})
    assert [r["country"] for r in out.collect()] == ["GB", "IE", "eire", "France", None]
    # Columns a table's rules name but this feed lacks are skipped.
    assert apply_value_rules(df, value_map={"city": {"a": "b"}}).collect() == df.collect()


def test_unix_timestamps_in_seconds_and_milliseconds(spark) -> None:
    df = _frame(spark, ["sold_at", "updated_at"], [
        ("1709283600", "1709283600123"), (" 1709283600.5 ", "0"), ("2024-03-01 09:00:00", "soon"), ("", None)])
    out = apply_value_rules(df, timestamp_units={"sold_at": "seconds", "updated_at": "milliseconds"})
    typed = cast_to_schema(out, {"sold_at": "timestamp", "updated_at": "timestamp"}).collect()
    assert [(r["sold_at"], r["updated_at"]) for r in typed] == [
        (datetime(2024, 3, 1, 9, 0), datetime(2024, 3, 1, 9, 0, 0, 123000)),
        (datetime(2024, 3, 1, 9, 0, 0, 500000), datetime(1970, 1, 1)),
        (datetime(2024, 3, 1, 9, 0), None),  # text that is no number is typed as before
        (None, None),
    ]
    assert typed[2]["_parse_errors"] == ["unparsable updated_at"]


def test_iso_timestamp_with_an_offset_is_read_as_utc(spark) -> None:
    """Already handled by cast_to_schema's formats (session time zone UTC); no rule needed."""
    df = _frame(spark, ["sold_at"], [("2024-03-01T10:00:00+01:00",), ("2024-03-01T10:00:00Z",)])
    typed = cast_to_schema(df, {"sold_at": "timestamp"}).collect()
    assert [r["sold_at"] for r in typed] == [datetime(2024, 3, 1, 9, 0), datetime(2024, 3, 1, 10, 0)]


def test_integral_float_ids_are_already_normalised_by_cast_to_schema(spark) -> None:
    df = _frame(spark, ["customer_id"], [("17850.0",), ("12583",), ("A17.0x",)])
    typed = cast_to_schema(df, {"customer_id": "string"}, id_columns=("customer_id",)).collect()
    assert [r["customer_id"] for r in typed] == ["17850", "12583", "A17.0x"]


# --------------------------------------------------------------------------- nested paths
def test_nested_fields_by_path_from_json_text_columns(spark) -> None:
    records = [
        {"id": "L1", "product": {"id": 7, "name": "Lantern"}, "customer": {"address": {"country": "FR"}},
         "tags": [{"id": "xmas"}]},
        {"id": "L2", "product": {"id": "A-9"}, "customer": {"address": None}},
        {"id": "L3", "product": None, "customer": {"address": {"country": "IE", "city": "Galway"}}},
    ]
    raw = spark.createDataFrame(records_as_text(records).to_pandas())
    mapping = {"id": "sale_line_id", "product.id": "product_id", "customer.address.country": "country",
               "customer.address": "address", "tags[0].id": "category"}
    out = map_columns(snake_case_columns(raw), mapping).collect()
    assert [(r["sale_line_id"], r["product_id"], r["country"], r["category"]) for r in out] == [
        ("L1", "7", "FR", "xmas"), ("L2", "A-9", None, None), ("L3", None, "IE", None)]
    assert out[2]["address"] == '{"country":"IE","city":"Galway"}'  # an object stays JSON text
    # A flat header with a dot is a column name, not a path.
    flat = _frame(spark, ["product.id"], [("7",)])
    assert map_columns(snake_case_columns(flat), {"product.id": "product_id"}).collect()[0]["product_id"] == "7"


def test_also_feeds_view_keeps_only_mapped_and_lineage_columns(spark) -> None:
    df = _frame(spark, ["stock_code", "description", "quantity", "_source_file"], [("71053", "LANTERN", "6", "f")])
    out = map_columns(df, {"stock_code": "product_id", "description": "product_name"}, keep_unmapped=False)
    assert out.columns == ["product_id", "product_name", "_source_file"]


# --------------------------------------------------------------------------- config
def _table(**extra) -> dict:
    return {"name": "sales", "entity": "sale", "pattern": "{date}/sales.csv", **extra}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"generate": {"line_id": {"from": ["a"]}}}, "generate.line_id: not a column of sale"),
        ({"generate": {"sale_line_id": "file_row"}, "columns": {"no": "sale_line_id"}}, "generate.sale_line_id"),
        ({"scale": {"card_number": 0.01}}, "scale.card_number: card_number is string"),
        ({"scale": {"unit_price": 0}}, "scale.unit_price must be a positive number"),
        ({"scale": {"unit_price": "cents"}}, "scale.unit_price must be a number"),
        ({"timestamp_units": {"quantity": "seconds"}}, "timestamp_units.quantity: quantity is int"),
        ({"timestamp_units": {"sold_at": "minutes"}}, "timestamp_units.sold_at"),
        ({"also_feeds": [{"entity": "sale", "columns": {"a": "order_id"}}]}, "also_feeds[0].entity"),
        ({"also_feeds": [{"entity": "product", "columns": {"a": "brand"}}]}, "nothing maps to product's key"),
        ({"columns": {"product..id": "product_id"}}, "nested path"),
    ],
)
def test_config_errors_name_the_key(extra: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        FileTableConfig.model_validate(_table(**extra))
    assert message in str(error.value)


def _pipeline(table: dict, entities: dict | None = None) -> dict:
    return {"start_date": "2024-01-01", "lake": {"url": "/tmp/lake"}, "warehouse": {"url": "sqlite:///wh.db"},
            "sources": [{"name": "shop", "kind": "file", "path": "/tmp/drop", "tables": [table]}],
            "masking": {"key": "k" * 32, "columns": {}}, "entities": entities or {}}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"value_map": {"country": {"EIRE": "IE"}}}, "shop.sales.value_map.country: not a column of sale"),
        ({"also_feeds": [{"entity": "product", "columns": {"a": "product_id", "b": "colour"}}]},
         "shop.sales.also_feeds[0].columns: ['colour'] are not columns of product"),
        ({"scale": {"order_status": 0.01}}, "shop.sales.scale.order_status: order_status is string, not a number"),
    ],
)
def test_rules_naming_no_entity_or_declared_column_fail(extra: dict, message: str) -> None:
    with pytest.raises(ValidationError) as error:
        PipelineConfig.model_validate(_pipeline(_table(**extra), {"sale": {"degenerate": {"order_status": "string"}}}))
    assert message in str(error.value)


def test_rules_and_also_feeds_may_name_declared_extra_columns() -> None:
    """A company name fed from sale lines, freight in cents, a status code mapped to words."""
    table = _table(scale={"freight": 0.01}, value_map={"order_status": {"S": "shipped"}},
                   also_feeds=[{"entity": "customer", "columns": {"cust": "customer_id", "firm": "company_name"}}])
    entities = {"customer": {"attributes": {"company_name": {"type": "string", "mask": "keep"}}},
                "sale": {"measures": {"freight": "decimal(12,2)"}, "degenerate": {"order_status": "string"}}}
    config = PipelineConfig.model_validate(_pipeline(table, entities))
    [(_, view)] = config.tables_for_entity("customer")
    assert view.columns == {"cust": "customer_id", "firm": "company_name"}
    with pytest.raises(ValidationError, match=r"also_feeds\[0\].columns: \['company_name'\]"):
        PipelineConfig.model_validate(_pipeline(table, {"sale": entities["sale"]}))


def test_file_row_needs_a_file_source() -> None:
    with pytest.raises(ValidationError, match="file_row needs a file source"):
        ApiEndpointConfig.model_validate({"name": "lines", "entity": "sale", "path": "/lines",
                                          "generate": {"sale_line_id": "file_row"}})


def test_config_key_defaults_to_generated_parts_and_also_feeds_reach_their_entities() -> None:
    table = FileTableConfig.model_validate(_table(
        generate={"sale_line_id": {"from": ["InvoiceNo", "StockCode"]}},
        scale={"unit_price": 0.01},
        value_map={"country": {"EIRE": "IE", 1: True}},
        also_feeds=[{"entity": "customer", "columns": {"CustomerID": "customer_id", "Country": "country"}}],
    ))
    assert table.key == ["InvoiceNo", "StockCode"]
    assert table.scale == {"unit_price": Decimal("0.01")}
    assert table.value_map == {"country": {"EIRE": "IE", "1": "true"}}
    config = PipelineConfig.model_validate({
        "start_date": "2011-12-01", "lake": {"url": "/tmp/lake"}, "warehouse": {"url": "sqlite://"},
        "masking": {"key": "k" * 16, "columns": {}},
        "sources": [{"name": "retail", "kind": "file", "path": "/drop", "tables": [table.model_dump(by_alias=True)]}],
    })
    (source, view), = config.tables_for_entity("customer")
    assert (source.name, view.name, view.entity, view.columns, view.generate) == (
        "retail", "sales", "customer", {"CustomerID": "customer_id", "Country": "country"}, {})
    assert [t.entity for _, t in config.tables_for_entity("sale")] == ["sale"]
    assert config.tables_for_entity("product") == []


def test_raw_validation_accepts_what_the_rules_build(spark) -> None:
    """Ingestion must not reject rows whose key is generated, whose id is nested, or whose required
    timestamp is Unix seconds; a timestamp that is no number is still rejected there."""
    import pyarrow as pa

    from lake_assets.ingestion.validation import RowValidator, missing_required

    table = ApiEndpointConfig.model_validate({
        "name": "lines", "entity": "sale", "path": "/lines", "timestamp_units": {"sold_at": "seconds"},
        "generate": {"sale_line_id": {"from": ["order", "line"]}},
        "columns": {"ts": "sold_at", "qty": "quantity", "price": "unit_price", "product.id": "product_id"}})
    chunk = pa.table({"order": ["A1", "A1"], "line": ["1", "2"], "ts": ["1709283600", "soon"], "qty": ["1", "2"],
                      "price": ["2.5", "3"], "product": ['{"id": 7}', '{"id": 8}']})
    assert missing_required(table, chunk.column_names) == []
    good, rejects = RowValidator(table).split(chunk, "https://api/lines")
    assert good.column("line").to_pylist() == ["1"]
    assert [r["_reject_reason"] for r in rejects] == ["unparsable number in ts (sold_at)"]


def test_generated_key_parts_are_the_ingestion_key_whatever_their_spelling() -> None:
    from lake_assets.ingestion.mapping import key_columns

    table = FileTableConfig.model_validate(_table(generate={"sale_line_id": {"from": ["invoice_no", "stock_code"]}}))
    assert key_columns(table, ["InvoiceNo", "StockCode", "Quantity"]) == ["InvoiceNo", "StockCode"]


def test_explain_does_not_report_a_generated_key_as_missing(tmp_path: Path, capsys) -> None:
    import json

    import yaml

    from lake_assets.explain import main

    day = tmp_path / "drop" / "2011-12-01"
    day.mkdir(parents=True)
    (day / "lines.csv").write_text("InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice\n"
                                   "536365,85123A,6,2011-12-01 08:26:00,255\n", encoding="utf-8")
    config = tmp_path / "lake.yaml"
    config.write_text(yaml.safe_dump({
        "start_date": "2011-12-01", "lake": {"url": str(tmp_path / "lake")}, "warehouse": {"url": "sqlite://"},
        "masking": {"key": "${LAKE_MASKING_KEY}", "columns": {}},
        "sources": [{"name": "retail", "kind": "file", "path": str(tmp_path / "drop"), "tables": [{
            "name": "lines", "entity": "sale", "pattern": "{date}/lines.csv", "scale": {"unit_price": 0.01},
            "generate": {"sale_line_id": {"from": ["invoice_no", "stock_code"]}},
            "columns": {"invoice_date": "sold_at"}}]}],
    }), encoding="utf-8")
    code = main(["explain", "--config", str(config), "--format", "json"])
    (table,) = json.loads(capsys.readouterr().out)["tables"]
    assert (code, table["missing_required"], table["errors"]) == (0, [], [])
