"""Columns of the configuration's own (`entities:`) and the discount rate, unit by unit: config
validation, the entity schema, the fact's money arithmetic, and the warehouse migration of an existing
star schema on PostgreSQL and MariaDB. The whole graph runs in test_own_sources_graph.py."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pyarrow as pa
import pytest
import yaml
from sqlalchemy import text

from lake_assets.config import ConfigError, RowLevelSecurityConfig, load_config
from lake_assets.entities import ENTITIES, entity_schema
from lake_assets.resources.warehouse import WarehouseResource
from lake_assets.resources.warehouse_security import recreate_views_and_security

from . import warehouse_rows as rows
from .conftest import TEST_MASKING_KEY

CENT = Decimal("0.01")
# Order lines of an order-entry database (Northwind's order details): quantity, unit price, discount rate.
# The first three are Northwind's own; the last two are lines whose discount, as an amount, ends on half a
# cent, where rounding the amount first and then subtracting it drifts by a cent.
ORDER_LINES = [
    ("10248-11", 12, "14.00", "0.15"),
    ("10248-42", 10, "9.80", "0.15"),
    ("10248-72", 5, "34.80", "0.05"),
    ("10249-14", 7, "0.70", "0.15"),
    ("10249-51", 3, "12.50", "0.05"),
]


def _config_file(tmp_path: Path, entities: dict) -> Path:
    document = {
        "start_date": "2024-01-01",
        "lake": {"url": str(tmp_path / "lake")},
        "warehouse": {"url": f"sqlite:///{tmp_path / 'wh.db'}"},
        "sources": [],
        "masking": {"key": TEST_MASKING_KEY, "columns": {"email": "hmac_sha256"}},
        "entities": entities,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("entities", "key", "says"),
    [
        ({"customer": {"attributes": {"email": {"type": "string", "mask": "keep"}}}},
         "customer.attributes.email", "already has a column 'email'"),
        ({"sale": {"degenerate": {"net_amount": "string"}}}, "sale.degenerate.net_amount", "already has a column"),
        ({"customer": {"attributes": {"company_name": {"type": "varchar(40)", "mask": "keep"}}}},
         "entities.customer.attributes.company_name.type", "is not one of string, int"),
        ({"customer": {"attributes": {"company_name": {"type": "string"}}}},
         "entities.customer.attributes.company_name", "needs 'mask'"),
        ({"customer": {"attributes": {"credit_limit": {"type": "decimal(12,2)", "mask": "redact"}}}},
         "entities.customer.attributes.credit_limit", "can only be 'keep'"),
        ({"sale": {"measures": {"freight": "string"}}}, "entities.sale.measures", "freight: type 'string' is not a"),
        ({"location": {"attributes": {"manager": {"type": "string", "mask": "redact", "scd": 2}}}},
         "location.attributes.manager", "SCD Type 1"),
        ({"product": {"attributes": {"Supplier Name": {"type": "string", "mask": "keep"}}}},
         "product.attributes.Supplier Name", "lowercase letters"),
    ],
)
def test_invalid_extras_fail_at_load_naming_the_key(tmp_path: Path, entities: dict, key: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_config_file(tmp_path, entities))
    message = str(error.value)
    assert str(tmp_path / "pipeline.yaml") in message and key in message and says in message, message


def test_entity_schema_appends_the_extras(tmp_path: Path) -> None:
    config = load_config(_config_file(tmp_path, {
        "customer": {"attributes": {
            "company_name": {"type": "string", "mask": "keep"},
            "credit_limit": {"type": "Decimal(12, 2)", "mask": "keep", "scd": 1},
            "contact_title": {"type": "string", "mask": "redact", "scd": 1},
        }},
        "sale": {"measures": {"freight": "decimal(12,2)"},
                 "degenerate": {"order_status": "string", "payment_method": {"type": "string", "mask": "keep"}}},
    }))
    customer = entity_schema(config, "customer")
    assert list(customer.columns)[: len(ENTITIES["customer"].columns)] == list(ENTITIES["customer"].columns)
    assert customer.extras == ("company_name", "credit_limit", "contact_title")
    assert customer.columns["credit_limit"] == "decimal(12,2)"
    assert entity_schema(config, "sale").extras == ("freight", "order_status", "payment_method")
    assert entity_schema(config, "product") is ENTITIES["product"]
    # scd: 1 extras are Type-1 columns; the versioned ones feed the change-detection hash.
    assert config.type1_columns("customer")[-2:] == ["credit_limit", "contact_title"]
    assert "company_name" in config.type2_attributes("customer")
    assert "credit_limit" not in config.type2_attributes("customer")
    rules = config.mask_rules_for("customer")
    assert (rules["company_name"], rules["contact_title"], rules["email"]) == ("keep", "redact", "hmac_sha256")
    # A degenerate column without `mask` has no rule: the masked layer scans it like any unconfigured column.
    assert config.mask_rules_for("sale") == {"email": "hmac_sha256", "payment_method": "keep"}


def test_person_names_are_redacted_unless_configured(tmp_path: Path) -> None:
    """The contract's first and last name, and a fact column naming a person without a `mask` of its own,
    get `redact` by default; a product, store or order column does not; the config wins, per column."""
    config = load_config(_config_file(tmp_path, {
        "sale": {"degenerate": {"customer_name": "string", "order_status": "string"}},
    }))
    assert {c: t for c, t in config.mask_rules_for("customer").items() if c.endswith("_name")} == {
        "first_name": "redact", "last_name": "redact"}
    assert config.mask_rules_for("sale") == {"email": "hmac_sha256", "customer_name": "redact"}
    assert config.mask_rules_for("product") == config.mask_rules_for("location") == {"email": "hmac_sha256"}

    path = _config_file(tmp_path, {"sale": {"degenerate": {"customer_name": {"type": "string", "mask": "keep"}}}})
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["masking"]["columns"]["last_name"] = "keep"
    document["masking"]["entities"] = {"customer": {"first_name": "hmac_sha256"}}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    configured = load_config(path)
    assert (configured.mask_rules_for("customer")["first_name"], configured.mask_rules_for("customer")["last_name"],
            configured.mask_rules_for("sale")["customer_name"]) == ("hmac_sha256", "keep", "keep")


def _config_with(tmp_path: Path, entities: dict, **sections: dict) -> Path:
    path = _config_file(tmp_path, entities)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump({**document, **sections}, sort_keys=False), encoding="utf-8")
    return path


DECLARED = {
    "customer": {"attributes": {"company_name": {"type": "string", "mask": "keep"},
                                "credit_limit": {"type": "decimal(12,2)", "mask": "keep", "scd": 2}}},
    "sale": {"measures": {"freight": "decimal(12,2)"}, "degenerate": {"order_status": "string"}},
}


def test_null_rules_and_type1_columns_accept_declared_extras(tmp_path: Path) -> None:
    config = load_config(_config_with(
        tmp_path, DECLARED,
        standardize={"entities": {
            "sale": {"nulls": {"order_status": {"rule": "default", "value": "unknown"},
                               "freight": {"rule": "default", "value": "0"}},
                     "aggregations": [{"name": "by_status", "group_by": ["order_status"],
                                       "metrics": {"freight": "sum(freight)"}}]},
            "customer": {"nulls": {"company_name": {"rule": "reject"}}},
        }},
        star_schema={"dimensions": {"customer": {"type1_columns": ["company_name", "city"]}}},
    ))
    assert config.standardize.entities["sale"].nulls["order_status"].value == "unknown"
    # Listed as Type 1, the extra is overwritten rather than versioned; each column once.
    assert config.type1_columns("customer") == ["company_name", "city"]
    assert "company_name" not in config.type2_attributes("customer")
    assert "credit_limit" in config.type2_attributes("customer")


@pytest.mark.parametrize(
    ("sections", "says"),
    [
        ({"standardize": {"entities": {"sale": {"nulls": {"shoe_size": {"rule": "keep"}}}}}},
         "standardize.entities.sale: unknown column(s) ['shoe_size']"),
        # An extra of another entity is no column of this one.
        ({"standardize": {"entities": {"customer": {"nulls": {"freight": {"rule": "keep"}}}}}},
         "standardize.entities.customer: unknown column(s) ['freight']"),
        ({"star_schema": {"dimensions": {"product": {"type1_columns": ["company_name"]}}}},
         "star_schema.dimensions.product.type1_columns: ['company_name'] are not attributes of product"),
        ({"star_schema": {"dimensions": {"customer": {"type1_columns": ["credit_limit"]}}}},
         "['credit_limit'] are declared scd: 2 under entities.customer.attributes"),
    ],
)
def test_rules_naming_undeclared_columns_still_fail(tmp_path: Path, sections: dict, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_config_with(tmp_path, DECLARED, **sections))
    assert says in str(error.value), str(error.value)


def _half_up(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def test_discount_rate_reproduces_the_source_net_to_the_cent(spark) -> None:
    from spark.star_schema import build_fact_sales, empty_scd2_dimension, unknown_member

    # The source prints each line at full precision, rounded once: the oracle.
    oracle = {lid: _half_up(q * Decimal(p) * (1 - Decimal(r))) for lid, q, p, r in ORDER_LINES}
    # What a rate had to become before: an amount rounded per line, then subtracted.
    as_amount = {lid: q * Decimal(p) - _half_up(q * Decimal(p) * Decimal(r)) for lid, q, p, r in ORDER_LINES}
    assert oracle["10248-11"] == Decimal("142.80") and oracle["10248-72"] == Decimal("165.30")
    assert sum(as_amount.values()) != sum(oracle.values())  # the fixture does drift the old way

    sales = spark.createDataFrame(
        [(lid, "10248", datetime(1996, 7, 4), None, None, None, q, Decimal(p), None, Decimal(r), None, "nw", "b1")
         for lid, q, p, r in ORDER_LINES]
        + [("10250-65", "10250", datetime(1996, 7, 8), None, None, None, 15, Decimal("16.80"), Decimal("1.00"),
            Decimal("0.15"), None, "nw", "b1")],
        "sale_line_id string, order_id string, sold_at timestamp, customer_id string, product_id string, "
        "location_id string, quantity int, unit_price decimal(12,2), discount decimal(12,2), "
        "discount_rate decimal(9,6), card_number string, _source string, _batch_id string",
    )
    customers = empty_scd2_dimension(spark, "customer_key", "customer_id", {"segment": "string"})
    products = empty_scd2_dimension(spark, "product_key", "product_id", {"category": "string"})
    locations = unknown_member(spark, "location_key", "location_id", {"region": "string"}, scd2=False)
    facts = {r["sale_line_id"]: r for r in build_fact_sales(sales, customers, products, locations).collect()}

    for lid, *_ in ORDER_LINES:
        assert facts[lid]["net_amount"] == oracle[lid], lid
    assert sum(facts[lid]["net_amount"] for lid, *_ in ORDER_LINES) == sum(oracle.values())
    # A rate and an amount together: the rate first, then the amount; gross is quantity x price.
    both = facts["10250-65"]
    assert both["net_amount"] == _half_up(15 * Decimal("16.80") * Decimal("0.85") - 1)
    assert (both["gross_amount"], both["discount_rate"]) == (Decimal("252.00"), Decimal("0.15"))


EXTRAS = {
    "dim_customer": {"company_name": "string", "credit_limit": "decimal(12,2)"},
    "fact_sales": {"freight": "decimal(12,2)", "order_status": "string"},
}


@pytest.mark.parametrize("server", ["postgres_warehouse", "mariadb_warehouse"])
def test_an_existing_star_schema_gains_the_extra_columns(request: pytest.FixtureRequest, server: str) -> None:
    fixture = request.getfixturevalue(server)
    before = WarehouseResource(url=fixture.url, schema_name=fixture.schema)
    rows.load_star(before)
    fact = before.qualified("fact_sales")
    with before.connect_checked() as conn, conn.begin():  # a fact table created before discount_rate existed
        conn.exec_driver_sql(f"ALTER TABLE {fact} DROP COLUMN discount_rate")

    after = WarehouseResource(url=fixture.url, schema_name=fixture.schema, extra_columns=EXTRAS,
                              sale_measures=["freight"])
    after.ensure_schema()
    for table, columns in EXTRAS.items():
        assert set(columns) <= set(after.table_columns(table)), table
    kept = after.fetch_all(f"SELECT sale_line_id, discount_rate, freight FROM {fact} ORDER BY sale_line_id")
    assert [(s, Decimal(str(r)), f) for s, r, f in kept] == [(f"L{i}", Decimal(0), None) for i in range(1, 5)]
    with after.connect_checked() as conn:
        scale = conn.execute(
            text("SELECT numeric_precision, numeric_scale FROM information_schema.columns "
                 "WHERE table_schema = :s AND table_name = 'dim_customer' AND column_name = 'credit_limit'"),
            {"s": fixture.schema},
        ).one()
    assert tuple(int(v) for v in scale) == (12, 2)

    customers = rows.dim_customer()
    customers = customers.append_column("company_name", pa.array([None, "Alfreds Futterkiste", "Ana Trujillo",
                                                                  "Alfreds Futterkiste GmbH", None]))
    customers = customers.append_column("credit_limit", pa.array([None, None, Decimal("500.00"),
                                                                  Decimal("1500.00"), None], rows.D2))
    after.upsert_rows("dim_customer", customers, ["customer_key"])
    day = rows.fact_sales(3, [("L5", 2, 1, 1), ("L6", 3, 2, 2)])
    day = day.append_column("discount_rate", pa.array([Decimal("0.15"), Decimal("0")], pa.decimal128(9, 6)))
    day = day.append_column("freight", pa.array([Decimal("32.38"), Decimal("11.61")], rows.D2))
    day = day.append_column("order_status", pa.array(["shipped", "pending"]))
    after.replace_rows("fact_sales", day, ("ingest_date", "2024-01-03"), key=["sale_line_id"])
    recreate_views_and_security(after, RowLevelSecurityConfig())

    current = after.fetch_all(f"SELECT customer_id, company_name, credit_limit FROM "
                              f"{after.qualified('v_current_customers')} ORDER BY customer_id")
    assert [(c, n, Decimal(str(v)) if v is not None else None) for c, n, v in current] == [
        ("C1", "Alfreds Futterkiste GmbH", Decimal("1500.00")), ("C2", "Ana Trujillo", Decimal("500.00")),
        ("C9", None, None)]
    daily = after.fetch_all(f"SELECT full_date, freight FROM {after.qualified('v_sales_daily')} ORDER BY full_date")
    assert [(str(d), None if f is None else Decimal(str(f))) for d, f in daily] == [
        ("2024-01-01", None), ("2024-01-02", None), ("2024-01-03", Decimal("43.99"))]
    status = after.fetch_all(f"SELECT order_status, COUNT(*) FROM {fact} WHERE order_status IS NOT NULL "
                             "GROUP BY order_status ORDER BY order_status")
    assert [(s, int(n)) for s, n in status] == [("pending", 1), ("shipped", 1)]
    # The degenerate column groups the per-day view; the fact rows above: net = 10 x quantity - 1.
    by_status = after.fetch_all(
        f"SELECT full_date, order_status, sale_lines, net_amount, freight FROM "
        f"{after.qualified('v_sales_daily_by_order_attributes')} ORDER BY full_date, order_status")
    assert [(str(d), s, int(n), Decimal(str(net)), None if f is None else Decimal(str(f)))
            for d, s, n, net, f in by_status] == [
        ("2024-01-01", None, 2, Decimal(19 + 29), None), ("2024-01-02", None, 2, Decimal(9 + 49), None),
        ("2024-01-03", "pending", 1, Decimal(19), Decimal("11.61")),
        ("2024-01-03", "shipped", 1, Decimal(9), Decimal("32.38"))]


def test_explain_reports_an_extra_as_mapped_with_its_mask(tmp_path: Path) -> None:
    from lake_assets.explain import explain_table

    drop = tmp_path / "drop" / "2024-01-01"
    drop.mkdir(parents=True)
    (drop / "customers.csv").write_text("CustomerID,CompanyName,CreditLimit\nALFKI,Alfreds Futterkiste,2500.00\n",
                                        encoding="utf-8")
    path = _config_file(tmp_path, {"customer": {"attributes": {
        "company_name": {"type": "string", "mask": "redact"},
        "credit_limit": {"type": "decimal(12,2)", "mask": "keep", "scd": 1}}}})
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["sources"] = [{"name": "crm", "kind": "file", "path": str(tmp_path / "drop"), "tables": [
        {"name": "customers", "entity": "customer", "pattern": "{date}/customers.csv"}]}]
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    config = load_config(path)
    source = config.sources[0]
    report = explain_table(config, source, source.tables[0])
    columns = {c.delivered: c for c in report.columns}
    assert "CompanyName" not in report.unmapped and "CreditLimit" not in report.unmapped
    assert (columns["CompanyName"].entity_column, columns["CompanyName"].masking) == ("company_name", "redact")
    assert (columns["CreditLimit"].entity_type, columns["CreditLimit"].masking) == ("decimal(12,2)", "keep")
