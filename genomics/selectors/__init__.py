"""Reads of the genomics vault."""
