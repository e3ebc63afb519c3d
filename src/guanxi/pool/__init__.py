"""The customer pool (公海): customers without an owner, claimed by salespeople under a
daily cap, and the rules that return neglected customers to it."""
