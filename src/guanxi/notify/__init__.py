"""Notifications to users: in-app now; e-mail and SMS through an outbox come next."""
