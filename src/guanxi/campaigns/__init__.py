"""Marketing campaigns (营销活动): saved audiences, campaigns with a holdout control group
and A/B variants sent through the notify outbox, tracked links, conversions and ROI."""
