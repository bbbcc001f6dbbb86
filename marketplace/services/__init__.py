"""Writes: one function per business operation, each in a transaction."""
