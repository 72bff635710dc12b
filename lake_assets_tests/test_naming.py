"""spark/naming.py: the one rule turning delivered column names into snake_case, used by raw
ingestion (to find entity columns) and by the processed layer (to name its columns)."""

from __future__ import annotations

import re
import unicodedata

import pytest

from lake_assets.config import FileTableConfig
from lake_assets.ingestion.mapping import entity_column, mapping_conflicts
from spark.naming import ColumnNameCollision, blank_header_name, snake_case_names, to_snake_case
from spark.standardize import snake_case_columns

CASES = [
    ("Customer ID", "customer_id"),
    ("customerId", "customer_id"),
    ("CUSTOMER-ID", "customer_id"),
    ("  E-Mail ", "e_mail"),
    ("zip__code!!", "zip_code"),
    # Unicode letters are kept and lower-cased; accents are not stripped.
    ("Prénom", "prénom"),
    ("Número de línea", "número_de_línea"),
    ("Straße", "straße"),
    ("ÉcoleNom", "école_nom"),
    ("名前", "名前"),
    # The same name typed with a combining accent (macOS exports) is the same column.
    (unicodedata.normalize("NFD", "Prénom"), "prénom"),
    # Digits-first names stay as they are.
    ("1st Name", "1st_name"),
    ("2024", "2024"),
    ("1stName", "1st_name"),
    # No letter or digit at all: the characters' Unicode names.
    ("#", "number_sign"),
    ("%", "percent_sign"),
    ("# %", "number_sign_percent_sign"),
    ("€", "euro_sign"),
    ("\ufeffLineNo", "line_no"),
]


@pytest.mark.parametrize(("raw", "snake"), CASES)
def test_to_snake_case(raw: str, snake: str) -> None:
    assert to_snake_case(raw) == snake


def test_blank_names_are_refused_and_blank_headers_get_their_position() -> None:
    with pytest.raises(ValueError, match="empty"):
        to_snake_case("  ")
    assert [blank_header_name(n) for n in (1, 7)] == ["column_1", "column_7"]


def test_collisions_name_both_columns() -> None:
    assert snake_case_names(["Cust No", "E-Mail", "_source_file"]) == {
        "Cust No": "cust_no",
        "E-Mail": "e_mail",
        "_source_file": "_source_file",
    }
    with pytest.raises(ColumnNameCollision, match=r"collide: 'Cust No' and 'cust_no' both become 'cust_no'"):
        snake_case_names(["Cust No", "x", "cust_no"])
    decomposed = unicodedata.normalize("NFD", "prénom")
    with pytest.raises(ColumnNameCollision, match=re.escape(f"'Prénom' and '{decomposed}' both become 'prénom'")):
        snake_case_names(["Prénom", decomposed])


def test_raw_mapping_and_processed_names_agree(spark) -> None:
    """The processed layer's names and raw ingestion's entity mapping come from one rule."""
    headers = ["Número de línea", "Prénom", "1st Name", "#", "%", "customerId"]
    df = spark.createDataFrame([tuple("abcdef")], ", ".join(f"`{h}` string" for h in headers))
    processed = snake_case_columns(df).columns
    assert processed == [to_snake_case(h) for h in headers]
    assert processed == ["número_de_línea", "prénom", "1st_name", "number_sign", "percent_sign", "customer_id"]

    table = FileTableConfig.model_validate(
        {"name": "t", "entity": "sale", "pattern": "x.csv", "columns": {"Número de línea": "sale_line_id"}}
    )
    assert [entity_column(table, h) for h in headers] == ["sale_line_id", *processed[1:]]
    # Rename keys are compared in snake_case, as the processed layer compares them.
    other = table.model_copy(update={"columns": {"NumeroDeLinea": "sale_line_id"}})
    assert entity_column(other, "Numero de Linea") == "sale_line_id"
    assert mapping_conflicts(table, ["Prénom", "prénom"]) == {"prénom": ["Prénom", "prénom"]}


def test_processed_collision_is_an_error_naming_both(spark) -> None:
    clash = spark.createDataFrame([("1", "2")], "`Prénom` string, `prénom` string")
    with pytest.raises(ValueError, match=r"'Prénom' and 'prénom' both become 'prénom'"):
        snake_case_columns(clash)
