"""Contact log: calls, visits, e-mails, chats and meetings; action items; contact cadence."""
