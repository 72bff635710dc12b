-- Star schema for MySQL 8 / MariaDB 10.5+. {schema} is replaced by the quoted database prefix.
-- Grain: dim_* one row per member version (SCD2) or per member (SCD1); fact_sales one row per sale line.
CREATE TABLE IF NOT EXISTS {schema}dim_customer (
    customer_key    BIGINT PRIMARY KEY,
    customer_id     VARCHAR(191) NOT NULL,
    first_name      VARCHAR(255),
    last_name       VARCHAR(255),
    email           VARCHAR(255),
    phone           VARCHAR(64),
    ssn             VARCHAR(64),
    street_address  VARCHAR(255),
    city            VARCHAR(255),
    region          VARCHAR(255),
    postal_code     VARCHAR(32),
    country         VARCHAR(64),
    segment         VARCHAR(64),
    version         INT NOT NULL,
    valid_from      DATETIME(6) NOT NULL,
    valid_to        DATETIME(6) NOT NULL,
    is_current      BOOLEAN NOT NULL,
    is_deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE,
    row_hash        CHAR(64) NOT NULL,
    INDEX ix_dim_customer_id (customer_id, valid_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {schema}dim_product (
    product_key     BIGINT PRIMARY KEY,
    product_id      VARCHAR(191) NOT NULL,
    product_name    VARCHAR(255),
    category        VARCHAR(255),
    brand           VARCHAR(255),
    list_price      DECIMAL(12, 2),
    version         INT NOT NULL,
    valid_from      DATETIME(6) NOT NULL,
    valid_to        DATETIME(6) NOT NULL,
    is_current      BOOLEAN NOT NULL,
    is_deleted      BOOLEAN NOT NULL DEFAULT FALSE,
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE,
    row_hash        CHAR(64) NOT NULL,
    INDEX ix_dim_product_id (product_id, valid_from)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {schema}dim_location (
    location_key    BIGINT PRIMARY KEY,
    location_id     VARCHAR(191) NOT NULL,
    store_name      VARCHAR(255),
    city            VARCHAR(255),
    region          VARCHAR(255),
    country         VARCHAR(64),
    postal_code     VARCHAR(32),
    is_inferred     BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {schema}dim_date (
    date_key        INT PRIMARY KEY,
    full_date       DATE NOT NULL,
    day_of_month    SMALLINT NOT NULL,
    day_of_week     SMALLINT NOT NULL,
    day_name        VARCHAR(16) NOT NULL,
    iso_week        SMALLINT NOT NULL,
    iso_year        SMALLINT NOT NULL,
    month           SMALLINT NOT NULL,
    month_name      VARCHAR(16) NOT NULL,
    quarter         SMALLINT NOT NULL,
    year            SMALLINT NOT NULL,
    is_weekend      BOOLEAN NOT NULL,
    fiscal_year     SMALLINT NOT NULL,
    fiscal_quarter  SMALLINT NOT NULL,
    fiscal_month    SMALLINT NOT NULL DEFAULT 1
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
CREATE TABLE IF NOT EXISTS {schema}fact_sales (
    sale_line_id    VARCHAR(191) PRIMARY KEY,
    order_id        VARCHAR(191),
    ingest_date     DATE NOT NULL,
    date_key        INT NOT NULL,
    customer_key    BIGINT NOT NULL,
    product_key     BIGINT NOT NULL,
    location_key    BIGINT NOT NULL,
    sold_at         DATETIME(6) NOT NULL,
    quantity        INT NOT NULL,
    unit_price      DECIMAL(12, 2) NOT NULL,
    discount        DECIMAL(12, 2) NOT NULL,
    discount_rate   DECIMAL(9, 6) NOT NULL DEFAULT 0,
    gross_amount    DECIMAL(14, 2) NOT NULL,
    net_amount      DECIMAL(14, 2) NOT NULL,
    payment_token   VARCHAR(64),
    _source         VARCHAR(255),
    _batch_id       VARCHAR(64),
    INDEX ix_fact_sales_ingest_date (ingest_date),
    INDEX ix_fact_sales_date (date_key),
    INDEX ix_fact_sales_customer (customer_key),
    INDEX ix_fact_sales_product (product_key),
    INDEX ix_fact_sales_location (location_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
-- Row-level security: which BI role (PostgreSQL role / MySQL user) may see which store regions.
-- Filled from `warehouse.row_level_security` in the config on every load; '*' means all.
CREATE TABLE IF NOT EXISTS {schema}bi_region_access (
    grantee         VARCHAR(191) NOT NULL,
    region          VARCHAR(191) NOT NULL,
    PRIMARY KEY (grantee, region)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
