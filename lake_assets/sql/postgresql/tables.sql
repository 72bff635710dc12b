-- Star schema for PostgreSQL. {schema} is replaced by the quoted schema prefix ("analytics".).
-- Grain: dim_* one row per member version (SCD2) or per member (SCD1); fact_sales one row per sale line.
CREATE TABLE IF NOT EXISTS {schema}dim_customer (
    customer_key    BIGINT PRIMARY KEY,
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
    valid_from      TIMESTAMP NOT NULL,
    valid_to        TIMESTAMP NOT NULL,
    is_current      BOOLEAN NOT NULL,
    is_deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE,
    row_hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dim_customer_id ON {schema}dim_customer (customer_id, valid_from);
CREATE TABLE IF NOT EXISTS {schema}dim_product (
    product_key     BIGINT PRIMARY KEY,
    product_id      TEXT NOT NULL,
    product_name    TEXT,
    category        TEXT,
    brand           TEXT,
    list_price      NUMERIC(12, 2),
    version         INTEGER NOT NULL,
    valid_from      TIMESTAMP NOT NULL,
    valid_to        TIMESTAMP NOT NULL,
    is_current      BOOLEAN NOT NULL,
    is_deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE,
    row_hash        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_dim_product_id ON {schema}dim_product (product_id, valid_from);
CREATE TABLE IF NOT EXISTS {schema}dim_location (
    location_key    BIGINT PRIMARY KEY,
    location_id     TEXT NOT NULL,
    store_name      TEXT,
    city            TEXT,
    region          TEXT,
    country         TEXT,
    postal_code     TEXT,
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS {schema}dim_date (
    date_key        INTEGER PRIMARY KEY,
    full_date       DATE NOT NULL,
    day_of_month    SMALLINT NOT NULL,
    day_of_week     SMALLINT NOT NULL,
    day_name        TEXT NOT NULL,
    iso_week        SMALLINT NOT NULL,
    iso_year        SMALLINT NOT NULL,
    month           SMALLINT NOT NULL,
    month_name      TEXT NOT NULL,
    quarter         SMALLINT NOT NULL,
    year            SMALLINT NOT NULL,
    is_weekend      BOOLEAN NOT NULL,
    fiscal_year     SMALLINT NOT NULL,
    fiscal_quarter  SMALLINT NOT NULL,
    fiscal_month    SMALLINT NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS {schema}fact_sales (
    sale_line_id    TEXT PRIMARY KEY,
    order_id        TEXT,
    ingest_date     DATE NOT NULL,
    date_key        INTEGER NOT NULL,
    customer_key    BIGINT NOT NULL,
    product_key     BIGINT NOT NULL,
    location_key    BIGINT NOT NULL,
    sold_at         TIMESTAMP NOT NULL,
    quantity        INTEGER NOT NULL,
    unit_price      NUMERIC(12, 2) NOT NULL,
    discount        NUMERIC(12, 2) NOT NULL,
    discount_rate   NUMERIC(9, 6) NOT NULL DEFAULT 0,
    gross_amount    NUMERIC(14, 2) NOT NULL,
    net_amount      NUMERIC(14, 2) NOT NULL,
    payment_token   TEXT,
    _source         TEXT,
    _batch_id       TEXT
);
CREATE INDEX IF NOT EXISTS ix_fact_sales_ingest_date ON {schema}fact_sales (ingest_date);
CREATE INDEX IF NOT EXISTS ix_fact_sales_date ON {schema}fact_sales (date_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_customer ON {schema}fact_sales (customer_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_product ON {schema}fact_sales (product_key);
CREATE INDEX IF NOT EXISTS ix_fact_sales_location ON {schema}fact_sales (location_key);
-- Row-level security: which BI role (PostgreSQL role / MySQL user) may see which store regions.
-- Filled from `warehouse.row_level_security` in the config on every load; '*' means all.
CREATE TABLE IF NOT EXISTS {schema}bi_region_access (
    grantee         TEXT NOT NULL,
    region          TEXT NOT NULL,
    PRIMARY KEY (grantee, region)
);
