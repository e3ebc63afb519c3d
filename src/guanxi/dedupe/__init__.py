"""De-duplication (entity resolution) of customers: scoring, review queue, merge and undo."""
