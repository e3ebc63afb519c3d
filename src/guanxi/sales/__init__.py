"""Sales (销售机会): leads and opportunities through their stages, the pipeline board, the
weighted forecast, sales teams and the public lead form."""
