"""Enterprise contracts and agreements (合同与协议): pricing terms, volume commitments,
amendments, documents and renewal reminders."""
