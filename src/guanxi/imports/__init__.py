"""Bulk intake: reading files, mapping columns, cleaning values, import jobs and export."""
