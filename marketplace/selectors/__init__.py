"""Reads: query shape and permission filtering live here, not in views."""
