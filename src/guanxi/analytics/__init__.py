"""Analytics: read-only models over the domain tables (RFM and classes, CLV, churn, volume
forecast, complaint text, KPIs, agent performance).

The package never writes a domain table. It reads them through a snapshot (Parquet files
queried by DuckDB) or, on PostgreSQL, in place; its results go to its own tables, each row
stamped with the run that produced it.
"""
