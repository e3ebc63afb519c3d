"""Shipments (waybills), travel bookings and generic orders: the transaction history."""
