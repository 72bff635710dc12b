"""Dagster concurrency pools of the asset graph.

A pool is a set of op-level slots kept in the instance database: every run on one DAGSTER_HOME,
however it was started (daemon-launched runs, `dagster asset materialize`, `materialize(...)` in
Python), claims a slot before a pooled step runs and waits while none is free (engine event "Step
blocked by limit for pool ..."). The limit comes from `concurrency.pools.default_limit` in the
instance's dagster.yaml (1 in both of this repository's files), so no manual
`dagster instance concurrency set` is needed. A pool never spans two DAGSTER_HOMEs: runs started
without one (a temporary instance per CLI call) do not see each other's slots.
"""

STAR_SCHEMA_POOL = "lake_star_schema"
"""The steps that write what every day shares, one at a time across runs: the curated dimensions
(each run applies the days committed since the last applied one onto the state the previous run
left), curated/fact_sales (a day's load rewrites the sale dates its lines belong to, shared with other days),
their warehouse loads (upserts and cross-day deletes) and warehouse/bi_views (view DDL and the
materialized-view refresh). A step holds the slot only while it runs: other steps of the same runs
(ingest, standardize, mask: one day's partitions each) run side by side."""
