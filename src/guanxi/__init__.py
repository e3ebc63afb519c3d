"""Guanxi (关系): customer relationship and customer-service system for logistics companies."""

__version__ = "0.1.0"
