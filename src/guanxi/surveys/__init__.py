"""Satisfaction surveys: versioned templates, invitations by SMS / e-mail link, outlet QR
codes and agent entry, the public answer page, triggers and results (issue #6)."""
