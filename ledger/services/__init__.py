"""Writes of the ledger app."""
