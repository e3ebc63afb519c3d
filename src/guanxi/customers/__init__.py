"""Customers: people, enterprises and public bodies, their contacts, addresses and tags."""
