"""Writes of the genomics vault."""
