"""Standardize + mask through Dagster on copies of the sample day (raw -> processed -> masked):
oracles come from the source files and Python's `hmac`, never from the pipeline's own functions.

* planted PII in an unexpected column stops the run at masked/<entity>, naming the column, not values;
  `on_unknown_pii: mask` masks it instead;
* e-mails are HMACs under the key, card tokens round-trip through `detokenize` with the key only;
* unparsable values are quarantined with a reason and counted in metadata;
* the masking key appears nowhere in the event log, metadata or errors; a missing key stops at load.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from dagster import AssetKey, DagsterInstance, materialize

from lake_assets.assets import build_all_assets
from lake_assets.config import BUNDLED_CONFIG, ConfigError, load_config
from lake_assets.definitions import build_resources
from lake_assets.detokenize import main as detokenize_main
from lake_assets.masking_keys import MaskingKeyError, MaskingKeys
from lake_assets.resources.lake_storage import LakeStorage

from .conftest import SAMPLE_DIR, TEST_MASKING_KEY

DAY = "2024-01-01"
CUSTOMER_KEYS = ("raw/shop_files/customers", "processed/customer", "masked/customer")
SALE_KEYS = ("raw/shop_files/sales", "processed/sale", "masked/sale")


def _copy_day(tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    shutil.copytree(SAMPLE_DIR / DAY, drop / DAY)
    return drop


def _add_column(path: Path, name: str, values: list[str]) -> None:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[0].append(name)
    for i, row in enumerate(rows[1:]):
        row.append(values[i % len(values)])
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _run(config, keys: tuple[str, ...]):
    wanted = {AssetKey(k.split("/")) for k in keys}
    assets = [a for a in build_all_assets(config) if set(a.keys) & wanted]
    instance = DagsterInstance.ephemeral()
    result = materialize(assets, resources=build_resources(config), partition_key=DAY, instance=instance,
                         raise_on_error=False)
    log_text = "\n".join(repr(entry) for entry in instance.all_logs(result.run_id))
    return result, log_text


def _set_cells(path: Path, cells: dict[tuple[str, str], str]) -> None:
    """Overwrite cells of a CSV, addressed by (first column's value, header)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    for (row_id, column), value in cells.items():
        targets = [row for row in rows[1:] if row[0] == row_id]
        assert targets, row_id
        for row in targets:
            row[header.index(column)] = value
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _delivered(value: str) -> str | None:
    """A delivered cell as the lake holds it: trimmed, None for a blank or the NULL token."""
    value = value.strip()
    return None if value in ("", "NULL") else value


def _metadata_by_asset(result, step: str) -> dict:
    """{asset key: materialization metadata} of every asset one step stored."""
    return {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node(step)}


def _source_rows(drop: Path, name: str) -> list[dict[str, str]]:
    with open(drop / DAY / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _card_digits_by_line(drop: Path) -> dict[str, str]:
    """{sale line id: the digits of its delivered card} of the day's sales file. Rows with an extra field
    are quarantined in raw (DictReader files the extra under None) and left out."""
    return {r["Line_ID"].strip(): "".join(c for c in r["Card"] if c.isdigit())
            for r in _source_rows(drop, "sales_001.csv") if r["Line_ID"] and r["Card"] and None not in r}


def _assert_no_secret(text: str) -> None:
    keys = MaskingKeys.from_secret(TEST_MASKING_KEY, "k1")
    assert TEST_MASKING_KEY not in text
    for sub_key in (keys.hash_key, keys.token_key, keys.vault_key):
        assert sub_key.hex() not in text and repr(sub_key) not in text


def _config_with(tmp_path: Path, standardize: dict | None = None, **masking: object) -> Path:
    raw = yaml.safe_load(BUNDLED_CONFIG.read_text(encoding="utf-8"))
    raw["masking"].update(masking)
    if standardize is not None:
        raw["standardize"] = standardize
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_planted_pii_stops_the_run_at_masked_naming_the_column_not_the_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    drop = _copy_day(tmp_path)
    planted = ["call me at jane.roe@example.net", "ssn 078-05-1120 on file", "ok"]
    _add_column(drop / DAY / "customers.csv", "Notes", planted)
    # Named like a card, holding no card number: a warning, never the failure. A limit is no card.
    _add_column(drop / DAY / "customers.csv", "Card No", ["on file", "declined", ""])
    _add_column(drop / DAY / "customers.csv", "Credit Limit", ["2500.00", "15000.00", ""])
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()

    result, log_text = _run(config, CUSTOMER_KEYS)
    assert not result.success
    done = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert done == {"raw/shop_files/customers", "quarantine/raw/shop_files/customers", "processed/customer",
                    "quarantine/processed/customer"}
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["masked__customer"]
    message = failures[0].event_specific_data.error.to_string()
    assert "unconfigured PII in column(s) notes (" in message and "email" in message and "ssn" in message
    assert "card_no" not in message and "credit_limit" not in message
    assert "card_no: name looks like card_number; no value matches a PII pattern" in log_text
    for text in (message, log_text):
        assert "jane.roe" not in text and "078-05-1120" not in text
        _assert_no_secret(text)
    lake = LakeStorage(url=config.lake.url)
    assert lake.commit_info(["masked", "customer"], DAY) is None  # nothing half-written

    # The same input with `on_unknown_pii: mask`: the free-text column is redacted, the run succeeds.
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with(tmp_path, on_unknown_pii="mask")))
    result, log_text = _run(load_config(), CUSTOMER_KEYS)
    assert result.success
    masked = lake.read_arrow(["masked", "customer"], DAY).to_pylist()
    assert masked and {r["notes"] for r in masked} == {"[REDACTED]"}
    assert "masking unconfigured PII by default: card_no" in log_text and "; notes: values look like" in log_text
    metadata = result.asset_materializations_for_node("masked__customer")[0].metadata
    assert (metadata["unconfigured_pii_columns"].value, metadata["pii_name_warnings"].value) == ("notes", "card_no")
    # Named like a card, so tokenized; not a column of the customer contract, so its vault is no asset
    # of its own, but the step still stores the day's vault table. None of the delivered values holds a
    # digit ("on file", "declined", blank), so no value becomes a token and the vault has no entry.
    assert metadata["vault_without_asset"].value == "card_no" and "card_no are tokenized but" in log_text
    assert {r["card_no"] for r in masked} == {None}
    assert lake.commit_info(["vault", "customer", "card_no"], DAY) is not None
    assert lake.read_arrow(["vault", "customer", "card_no"], DAY).num_rows == 0
    assert {r["credit_limit"] for r in masked} == {"2500.00", "15000.00", ""}  # passed through as delivered
    _assert_no_secret(log_text)


def test_planted_pii_beside_a_tokenized_card_stops_masked_sale_before_anything_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    # An entity with a tokenized card stores a vault as well as its masked rows: a planted e-mail and a card
    # number in free text beside the card must stop the step before either is stored.
    drop = _copy_day(tmp_path)
    sales = drop / DAY / "sales_001.csv"
    planted = ["leave at door, call jane.roe@example.net", "paid by 4111 1111 1111 1111", "ok"]
    _add_column(sales, "Delivery Note", planted)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()

    result, log_text = _run(config, SALE_KEYS)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["masked__sale"]
    message = failures[0].event_specific_data.error.to_string()
    assert "unconfigured PII in column(s) delivery_note (delivery_note: values look like " in message
    assert "email (" in message and "card_number (" in message
    for text in (message, log_text):
        assert "jane.roe" not in text and "4111 1111" not in text
    lake = LakeStorage(url=config.lake.url)
    assert lake.commit_info(["masked", "sale"], DAY) is None
    assert lake.commit_info(["vault", "sale", "card_number"], DAY) is None

    # With `on_unknown_pii: mask` the note is masked and the card vault holds one entry per distinct card.
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with(tmp_path, on_unknown_pii="mask")))
    result, _ = _run(load_config(), SALE_KEYS)
    assert result.success
    masked = lake.read_arrow(["masked", "sale"], DAY).to_pylist()
    assert masked and not any("jane.roe@example.net" in str(r["delivery_note"])
                              or "4111 1111 1111 1111" in str(r["delivery_note"]) for r in masked)
    lines = {r["sale_line_id"] for r in masked}
    delivered_cards = {card for line, card in _card_digits_by_line(drop).items() if line in lines and card}
    assert lake.read_arrow(["vault", "sale", "card_number"], DAY).num_rows == len(delivered_cards)


def test_sample_day_masked_with_key_tokens_round_trip_and_bad_values_quarantined(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark, capsys: pytest.CaptureFixture[str]
) -> None:
    drop = _copy_day(tmp_path)
    # Customers without an SSN or a street (blank, the null token, spaces): masked NULL, the others masked.
    _set_cells(drop / DAY / "customers.csv", {("C0000002", "Social Security"): "", ("C0000003", "Social Security"):
                                              "NULL", ("C0000003", "Street"): "", ("C0000004", "Street"): "   "})
    sales_file = drop / DAY / "sales_001.csv"
    # Two rows that pass the raw layer's shape checks but cannot be standardized: a date that does not
    # exist, and a non-required money column with text in it.
    with open(sales_file, "a", encoding="utf-8") as handle:
        handle.write("LBAD0001,O9,2024-02-30 10:00:00,C0000001,P00001,S001,3,$1.00,0.00,\n")
        handle.write("LBAD0002,O9,2024-01-01 10:00:00,C0000001,P00001,S001,3,$1.00,n.a.,\n")
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    config = load_config()
    result, log_text = _run(config, CUSTOMER_KEYS + SALE_KEYS)
    assert result.success
    lake = LakeStorage(url=config.lake.url)
    keys = MaskingKeys.from_secret(TEST_MASKING_KEY, "k1")

    # Quarantine: exactly the planted rows, each with its reason, and the count in metadata.
    quarantine = lake.read_arrow(["quarantine", "processed", "sale"], DAY).to_pylist()
    assert {r["sale_line_id"]: r["_reject_reason"] for r in quarantine} == {
        "LBAD0001": "unparsable sold_at", "LBAD0002": "unparsable discount"}
    stored = _metadata_by_asset(result, "processed__sale")
    processed_meta = stored["processed/sale"]
    assert processed_meta["quarantined_rows"].value == 2
    assert "unparsable discount: 1" in processed_meta["quarantine_reasons"].value
    # The quarantine is an asset of its own, stored by the lake IO manager.
    assert stored["quarantine/processed/sale"]["dagster/row_count"].value == 2

    # Customers: e-mails are HMAC-SHA256 under the derived key of the normalized source e-mail.
    source = _source_rows(drop, "customers.csv")
    expected_emails = {hmac.new(keys.hash_key, r["E-Mail"].strip().lower().encode(), hashlib.sha256).hexdigest()
                       for r in source if r["E-Mail"].strip()}
    masked = lake.read_arrow(["masked", "customer"], DAY).to_pylist()
    assert {r["email"] for r in masked if r["email"]} == expected_emails
    # Per customer, the masked values its source rows allow: NULL only for a blank or NULL input.
    allowed: dict[str, dict[str, set[str | None]]] = {}
    for r in source:
        cells = allowed.setdefault(r["Cust_No"].strip(), {})
        ssn, zip_code = _delivered(r["Social Security"]), _delivered(r["ZIP"])
        cells.setdefault("ssn", set()).add(None if ssn is None else f"***-**-{ssn[-4:]}")
        cells.setdefault("postal_code", set()).add(None if zip_code is None else zip_code[:3])
        for column, header in (("street_address", "Street"), ("first_name", "First Name"),
                               ("last_name", "Last Name")):
            cells.setdefault(column, set()).add(None if _delivered(r[header]) is None else "[REDACTED]")
    assert allowed["C0000002"]["ssn"] == allowed["C0000003"]["ssn"] == {None}  # the planted blanks
    assert allowed["C0000003"]["street_address"] == allowed["C0000004"]["street_address"] == {None}
    assert {r["customer_id"] for r in masked} == set(allowed)
    for row in masked:
        assert row["_mask_key_id"] == "k1"
        for column, values in allowed[row["customer_id"]].items():
            assert row[column] in values, (row["customer_id"], column, row[column], values)
        assert {"_processed_at", "_run_id", "_source", "_row_hash"} <= set(row)
    # Person names are redacted by default (the sample config names no rule for them); the source has names.
    assert any(r["First Name"].strip() for r in source) and "[REDACTED]" in {r["first_name"] for r in masked}
    # keep_versions: one row per (customer_id, updated_at), never two for the same version.
    versions = [(r["customer_id"], r["updated_at"]) for r in masked]
    assert len(versions) == len(set(versions))

    # Sales: tokens show only the last four digits; detokenize with the key gives the source digits.
    sales = _card_digits_by_line(drop)
    masked_sales = {r["sale_line_id"]: r["card_number"] for r in lake.read_arrow(["masked", "sale"], DAY).to_pylist()}
    carded = {line for line, card in sales.items() if card}
    assert carded and carded <= set(masked_sales)  # every source line with a card was masked, none lost
    pairs = {masked_sales[line]: sales[line] for line in carded}
    assert len(pairs) == len({sales[line] for line in carded})  # one token per distinct card
    for token, card in pairs.items():
        assert "".join(c for c in token if c.isdigit()) == card[-4:]
    vault_files = lake.committed_files(["vault", "sale", "card_number"], DAY)
    vault_text = " ".join(str(pq.read_table(f).to_pylist()) for f in vault_files)
    assert not any(card in vault_text for card in pairs.values())
    # The vault is an asset of the masked step: one entry per distinct card, counted on both assets.
    masked_meta = _metadata_by_asset(result, "masked__sale")
    assert masked_meta["vault/sale/card_number"]["dagster/row_count"].value == len(pairs)
    assert masked_meta["masked/sale"]["vault_entries"].value == len(pairs)

    wanted = sorted(pairs)[:5]
    capsys.readouterr()
    assert detokenize_main(["--entity", "sale", "--column", "card_number", *wanted]) == 0
    out, err = capsys.readouterr()
    assert dict(line.split("\t") for line in out.splitlines()) == {t: pairs[t] for t in wanted}
    assert "resolved 5 of 5" in err
    _assert_no_secret(out + err + log_text)

    # Another key: nothing is revealed (GCM authentication fails), exit status 1.
    monkeypatch.setenv("LAKE_MASKING_KEY", "a-different-secret-0123456789")
    assert detokenize_main(["--entity", "sale", "--column", "card_number", *wanted]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "not decryptable" in err
    assert not any(pairs[t] in err for t in wanted)


def test_missing_or_short_key_fails_before_any_step_and_never_echoes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LAKE_MASKING_KEY")
    with pytest.raises(ConfigError, match=r"masking\.key.*LAKE_MASKING_KEY is not set"):
        load_config()
    assert detokenize_main(["tok_x"]) == 2
    assert "masking.key" in capsys.readouterr().err

    short = "short-secret-1"
    monkeypatch.setenv("LAKE_MASKING_KEY", short)
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "masking.key" in str(caught.value) and short not in str(caught.value)
    with pytest.raises(MaskingKeyError) as caught_keys:
        MaskingKeys.from_secret(short, "k1")
    assert short not in str(caught_keys.value) and "unkeyed" in str(caught_keys.value)
    assert short not in repr(MaskingKeys.from_secret(short * 2, "k1"))


def test_unkeyed_hash_only_when_configured_and_with_a_warning_and_config_rules_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spark
) -> None:
    drop = _copy_day(tmp_path)
    with open(drop / DAY / "customers.csv", newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    for row in table[1:4]:  # three customers without a segment (blank, spaces, the null token)
        row[11] = ["", "   ", "NULL"][table.index(row) - 1]
    with open(drop / DAY / "customers.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(table)
    monkeypatch.setenv("SAMPLE_DROP_PATH", str(drop))
    monkeypatch.setenv("LAKE_URL", str(tmp_path / "lake"))
    columns = {**load_config().masking.columns, "email": "sha256"}
    rules = {"entities": {"customer": {
        "nulls": {"segment": {"rule": "default", "value": "unassigned"}},
        "aggregations": [{"name": "customers_by_country", "group_by": ["country"],
                          "metrics": {"versions": "count(*)", "customers": "count_distinct(customer_id)"}}],
    }}}
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with(tmp_path, standardize=rules, columns=columns)))
    config = load_config()
    result, log_text = _run(config, (*CUSTOMER_KEYS, "processed/agg/customers_by_country"))
    assert result.success
    assert "customer.email: unkeyed sha256 is explicitly configured" in log_text
    lake = LakeStorage(url=config.lake.url)
    masked = lake.read_arrow(["masked", "customer"], DAY).to_pylist()
    source = _source_rows(drop, "customers.csv")
    assert {r["email"] for r in masked if r["email"]} == {
        hashlib.sha256(r["E-Mail"].strip().lower().encode()).hexdigest() for r in source if r["E-Mail"].strip()}
    # Null rule from config: blank segments became the default, no NULL left.
    blank = {r["Cust_No"].strip() for r in source if r["Customer Segment"].strip() in ("", "NULL")}
    assert len(blank) == 3
    assert all(r["segment"] == "unassigned" for r in masked if r["customer_id"] in blank)
    assert all(r["segment"] is not None for r in masked)
    # The configured aggregate: per country, versions and distinct customers as in the processed rows.
    rows = lake.read_arrow(["processed", "agg", "customers_by_country"], DAY).to_pylist()
    aggregate = {r["country"]: r for r in rows}
    assert sum(r["versions"] for r in aggregate.values()) == len(masked)
    assert {c: r["customers"] for c, r in aggregate.items()} == {
        c: len({m["customer_id"] for m in masked if m["country"] == c}) for c in {m["country"] for m in masked}}


@pytest.mark.parametrize(
    ("standardize", "message"),
    [
        ({"entities": {"customer": {"nulls": {"shoe_size": {"rule": "keep"}}}}}, "unknown column(s) ['shoe_size']"),
        ({"entities": {"customer": {"nulls": {"segment": {"rule": "default"}}}}}, "'value' is required"),
        ({"entities": {"sale": {"aggregations": [{"name": "x", "group_by": ["location_id"],
                                                  "metrics": {"n": "sum(quantity); drop table t"}}]}}}, "metric n"),
        ({"entities": {"martian": {}}}, "unknown entity"),
    ],
)
def test_bad_standardize_rules_fail_at_load_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, standardize: dict, message: str
) -> None:
    monkeypatch.setenv("LAKE_CONFIG", str(_config_with(tmp_path, standardize=standardize)))
    with pytest.raises(ConfigError) as caught:
        load_config()
    assert "standardize" in str(caught.value) and message in str(caught.value)
