-- BI views for MySQL / MariaDB. Re-created after every load.
-- Placeholders filled from the config's `entities:` (empty without extras): {sale_measure_sums} adds
-- `, SUM(f.<m>) AS <m>` per sale measure; {customer_extra_columns} adds `, <a>` per customer attribute.
-- MySQL has no row-level security: the view-based equivalent. Every BI view reads the facts through
-- v_fact_sales_visible, which keeps the rows whose store region bi_region_access grants to the
-- connected user (USER(), the session's login, not the view definer); '*' grants all. Restricted
-- users are granted SELECT on the v_* views only, never on the base tables (SQL SECURITY DEFINER).
-- Customers the same way: v_dim_customer_visible keeps the customer versions whose own region (their
-- address) is granted; the customer views read dim_customer only through it.
DROP VIEW IF EXISTS {schema}v_fact_sales_visible;
CREATE SQL SECURITY DEFINER VIEW {schema}v_fact_sales_visible AS
SELECT f.*
FROM {schema}fact_sales f
JOIN {schema}dim_location l ON l.location_key = f.location_key
WHERE EXISTS (
    SELECT 1 FROM {schema}bi_region_access a
    WHERE a.grantee IN (SUBSTRING_INDEX(USER(), '@', 1), '*') AND a.region IN (l.region, '*')
);
DROP VIEW IF EXISTS {schema}v_dim_customer_visible;
CREATE SQL SECURITY DEFINER VIEW {schema}v_dim_customer_visible AS
SELECT c.*
FROM {schema}dim_customer c
WHERE EXISTS (
    SELECT 1 FROM {schema}bi_region_access a
    WHERE a.grantee IN (SUBSTRING_INDEX(USER(), '@', 1), '*') AND a.region IN (c.region, '*')
);
DROP VIEW IF EXISTS {schema}v_sales_daily;
CREATE VIEW {schema}v_sales_daily AS
SELECT d.full_date, d.year, d.month, d.day_name, d.is_weekend,
       COUNT(*) AS sale_lines, SUM(f.quantity) AS units, SUM(f.gross_amount) AS gross_amount,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY d.full_date, d.year, d.month, d.day_name, d.is_weekend;
DROP VIEW IF EXISTS {schema}v_sales_by_month_category;
CREATE VIEW {schema}v_sales_by_month_category AS
SELECT d.year, d.month, p.category, COUNT(*) AS sale_lines, SUM(f.quantity) AS units,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f
JOIN {schema}dim_date d ON d.date_key = f.date_key
JOIN {schema}dim_product p ON p.product_key = f.product_key
GROUP BY d.year, d.month, p.category;
DROP VIEW IF EXISTS {schema}v_sales_by_product;
CREATE VIEW {schema}v_sales_by_product AS
SELECT p.product_id, p.product_name, p.category, p.brand, COUNT(*) AS sale_lines,
       SUM(f.quantity) AS units, SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f JOIN {schema}dim_product p ON p.product_key = f.product_key
GROUP BY p.product_id, p.product_name, p.category, p.brand;
DROP VIEW IF EXISTS {schema}v_sales_by_location;
CREATE VIEW {schema}v_sales_by_location AS
SELECT l.location_id, l.store_name, l.city, l.region, l.country, COUNT(*) AS sale_lines,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f JOIN {schema}dim_location l ON l.location_key = f.location_key
GROUP BY l.location_id, l.store_name, l.city, l.region, l.country;
DROP VIEW IF EXISTS {schema}v_sales_by_customer_segment;
CREATE VIEW {schema}v_sales_by_customer_segment AS
SELECT c.segment, d.year, d.month, COUNT(DISTINCT c.customer_id) AS customers, SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f
-- LEFT: a restricted user's sales of customers from regions it is not granted still count (segment NULL).
LEFT JOIN {schema}v_dim_customer_visible c ON c.customer_key = f.customer_key
JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY c.segment, d.year, d.month;
-- One row per day and combination of the fact's degenerate columns ({sale_degenerate_columns}: `, f.<c>`
-- per declared `entities.sale.degenerate` column; without any, one row per day).
DROP VIEW IF EXISTS {schema}v_sales_daily_by_order_attributes;
CREATE VIEW {schema}v_sales_daily_by_order_attributes AS
SELECT d.full_date{sale_degenerate_columns}, COUNT(*) AS sale_lines, SUM(f.quantity) AS units,
       SUM(f.net_amount) AS net_amount{sale_measure_sums}
FROM {schema}v_fact_sales_visible f JOIN {schema}dim_date d ON d.date_key = f.date_key
GROUP BY d.full_date{sale_degenerate_columns};
DROP VIEW IF EXISTS {schema}v_current_customers;
CREATE VIEW {schema}v_current_customers AS
SELECT customer_key, customer_id, first_name, last_name, email, phone, city, region, country, segment,
       version, valid_from{customer_extra_columns}
FROM {schema}v_dim_customer_visible
WHERE is_current = TRUE AND customer_key <> -1;
