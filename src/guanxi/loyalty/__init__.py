"""Loyalty membership (会员制度): tiers over a rolling window, an append-only points ledger,
and coupons."""
