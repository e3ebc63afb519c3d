"""Service desk: tickets, SLAs on China's working calendar, ownership, claims (issue #4)."""
