"""Notifications to users: in the app and by e-mail through the outbox (SMS comes later)."""
