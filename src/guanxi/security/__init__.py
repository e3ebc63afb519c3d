"""Users, roles and permissions, sessions and API tokens, field encryption and masking."""
