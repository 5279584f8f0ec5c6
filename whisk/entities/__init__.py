"""Entities with OpenWhisk's JSON shapes: one family per module."""
