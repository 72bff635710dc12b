-- Star schema for SQLite (the embedded default). {schema} is always empty here.
-- Grain: dim_* one row per member version (SCD2) or per member (SCD1); fact_sales one row per sale line.
CREATE TABLE IF NOT EXISTS {schema}dim_customer (
    customer_key    INTEGER PRIMARY KEY,
    customer_id     TEXT NOT NULL,
    first_name      TEXT,
    last_name       TEXT,
    email           TEXT,
    phone           TEXT,
    ssn             TEXT,
    street_address  TEXT,
    city            TEXT,
    region          TEXT,
    postal_code     TEXT,
    country         TEXT,
    segment         TEXT,
    version         INTEGER NOT NULL,
    valid_from      TEXT NOT NULL,
    valid_to        TEXT NOT NULL,
    is_current      INTEGER NOT NULL,
    is_deleted      INTEGER NOT NULL DEFAULT 0,
    is_inferred     INTEGER NOT NULL DEFAULT 0,
    row_hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dim_customer_id ON {schema}dim_customer (customer_id, valid_from);
CREATE TABLE IF NOT EXISTS {schema}dim_product (
    product_key     INTEGER PRIMARY KEY,
    product_id      TEXT NOT NULL,
    product_name    TEXT,
    category        TEXT,
    brand           TEXT,
    list_price      NUMERIC,
    version         INTEGER NOT NULL,
    valid_from      TEXT NOT NULL,
    valid_to        TEXT NOT NULL,
    is_current      INTEGER NOT NULL,
    is_deleted      INTEGER NOT NULL DEFAULT 0,
    is_inferred     INTEGER NOT NULL DEFAULT 0,
    row_hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dim_product_id ON {schema}dim_product (product_id, valid_from);
CREATE TABLE IF NOT EXISTS {schema}dim_location (
    location_key    INTEGER PRIMARY KEY,
    location_id     TEXT NOT NULL,
    store_name      TEXT,
    city            TEXT,
    region          TEXT,
    country         TEXT,
    postal_code     TEXT,
    is_inferred     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS {schema}dim_date (
    date_key        INTEGER PRIMARY KEY,
    full_date       TEXT NOT NULL,
    day_of_month    INTEGER NOT NULL,
    day_of_week     INTEGER NOT NULL,
    day_name        TEXT NOT NULL,
    iso_week        INTEGER NOT NULL,
    iso_year        INTEGER NOT NULL,
    month           INTEGER NOT NULL,
    month_name      TEXT NOT NULL,
    quarter         INTEGER NOT NULL,
    year            INTEGER NOT NULL,
    is_weekend      INTEGER NOT NULL,
    fiscal_year     INTEGER NOT NULL,
    fiscal_quarter  INTEGER NOT NULL,
    fiscal_month    INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS {schema}fact_sales (
    sale_line_id    TEXT PRIMARY KEY,
    order_id        TEXT,
    ingest_date     TEXT NOT NULL,
    date_key        INTEGER NOT NULL,
    customer_key    BIGINT NOT NULL,
    product_key     BIGINT NOT NULL,
    location_key    BIGINT NOT NULL,
    sold_at         TEXT NOT NULL,
    quantity        INTEGER NOT NULL,
    unit_price      NUMERIC NOT NULL,
    discount        NUMERIC NOT NULL,
    discount_rate   NUMERIC NOT NULL DEFAULT 0,
    gross_amount    NUMERIC NOT NULL,
    net_amount      NUMERIC NOT NULL,
    payment_token   TEXT,
    _source         TEXT,
    _batch_id       TEXT
);
CREATE INDEX IF NOT EXISTS ix_fact_sales_ingest_date ON {schema}fact_sales (ingest_date);
CREATE INDEX IF NOT EXISTS ix_fact_sales_date ON {schema}fact_sales (date_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_customer ON {schema}fact_sales (customer_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_product ON {schema}fact_sales (product_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_location ON {schema}fact_sales (location_key);
