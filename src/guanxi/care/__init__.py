"""Customer-care automation (客户关怀): birthday, festival, anniversary, win-back and
after-complaint messages, queued through the notify outbox with consent and caps."""
