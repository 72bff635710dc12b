-- BI views over the star schema for PostgreSQL. Re-created after every load.
-- Placeholders filled from the config's `entities:` (empty without extras): {sale_measure_sums} adds
-- `, SUM(f.<m>) AS <m>` per sale measure; {customer_extra_columns} adds `, <a>` per customer attribute.
-- security_invoker: a view reads the tables as the querying role, so row-level security applies.
DROP VIEW IF EXISTS {schema}v_sales_daily;
CREATE VIEW {schema}v_sales_daily WITH (security_invoker = true) AS
SELECT d.full_date, d.year, d.month, d.day_name, d.is_weekend,
       COUNT(*) AS sale_lines, SUM(f.quantity) AS units, SUM(f.gross_amount) AS gross_amount,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY d.full_date, d.year, d.month, d.day_name, d.is_weekend;
DROP VIEW IF EXISTS {schema}v_sales_by_month_category;
CREATE VIEW {schema}v_sales_by_month_category WITH (security_invoker = true) AS
SELECT d.year, d.month, p.category, COUNT(*) AS sale_lines, SUM(f.quantity) AS units,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f
JOIN {schema}dim_date d ON d.date_key = f.date_key
JOIN {schema}dim_product p ON p.product_key = f.product_key
GROUP BY d.year, d.month, p.category;
DROP VIEW IF EXISTS {schema}v_sales_by_product;
CREATE VIEW {schema}v_sales_by_product WITH (security_invoker = true) AS
SELECT p.product_id, p.product_name, p.category, p.brand, COUNT(*) AS sale_lines,
       SUM(f.quantity) AS units, SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f JOIN {schema}dim_product p ON p.product_key = f.product_key
GROUP BY p.product_id, p.product_name, p.category, p.brand;
DROP VIEW IF EXISTS {schema}v_sales_by_location;
CREATE VIEW {schema}v_sales_by_location WITH (security_invoker = true) AS
SELECT l.location_id, l.store_name, l.city, l.region, l.country, COUNT(*) AS sale_lines,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f JOIN {schema}dim_location l ON l.location_key = f.location_key
GROUP BY l.location_id, l.store_name, l.city, l.region, l.country;
DROP VIEW IF EXISTS {schema}v_sales_by_customer_segment;
CREATE VIEW {schema}v_sales_by_customer_segment WITH (security_invoker = true) AS
SELECT c.segment, d.year, d.month, COUNT(DISTINCT c.customer_id) AS customers, SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f
-- LEFT: a restricted role's sales of customers from regions it is not granted still count (segment NULL).
LEFT JOIN {schema}dim_customer c ON c.customer_key = f.customer_key
JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY c.segment, d.year, d.month;
-- One row per day and combination of the fact's degenerate columns ({sale_degenerate_columns}: `, f.<c>`
-- per declared `entities.sale.degenerate` column; without any, one row per day).
DROP VIEW IF EXISTS {schema}v_sales_daily_by_order_attributes;
CREATE VIEW {schema}v_sales_daily_by_order_attributes WITH (security_invoker = true) AS
SELECT d.full_date{sale_degenerate_columns}, COUNT(*) AS sale_lines, SUM(f.quantity) AS units,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}fact_sales f JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY d.full_date{sale_degenerate_columns};
DROP VIEW IF EXISTS {schema}v_current_customers;
CREATE VIEW {schema}v_current_customers WITH (security_invoker = true) AS
SELECT customer_key, customer_id, first_name, last_name, email, phone, city, region, country, segment,
       version, valid_from{customer_extra_columns}
FROM {schema}dim_customer
WHERE is_current = TRUE AND customer_key <> -1;
-- Materialized views for dashboards: refreshed CONCURRENTLY after each load (the unique index allows it).
-- They are computed as their owner, so row-level security does NOT apply: grant them only to
-- unrestricted roles (region '*'); the pipeline does exactly that.
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}mv_sales_daily_location AS
SELECT f.date_key, f.location_key, COUNT(*) AS sale_lines, SUM(f.quantity) AS units,
       SUM(f.gross_amount) AS gross_amount, SUM(f.net_amount) AS net_amount
FROM {schema}fact_sales f
GROUP BY f.date_key, f.location_key;
CREATE UNIQUE INDEX IF NOT EXISTS ux_mv_sales_daily_location ON {schema}mv_sales_daily_location (date_key, location_key);
CREATE MATERIALIZED VIEW IF NOT EXISTS {schema}mv_sales_monthly_category AS
SELECT d.year, d.month, COALESCE(p.category, 'Unknown') AS category, COUNT(*) AS sale_lines,
       SUM(f.quantity) AS units, SUM(f.net_amount) AS net_amount
FROM {schema}fact_sales f
JOIN {schema}dim_date d ON d.date_key = f.date_key
JOIN {schema}dim_product p ON p.product_key = f.product_key
GROUP BY d.year, d.month, COALESCE(p.category, 'Unknown');
CREATE UNIQUE INDEX IF NOT EXISTS ux_mv_sales_monthly_category ON {schema}mv_sales_monthly_category (year, month, category);
