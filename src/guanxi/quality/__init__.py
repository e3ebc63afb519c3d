"""Data quality: completeness, invalid values, suspected duplicates and stale records."""
