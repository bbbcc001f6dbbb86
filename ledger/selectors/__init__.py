"""Reads of the ledger app."""
