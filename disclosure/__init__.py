"""Disclosure control for discovery answers (Beacon v2): a privacy budget per caller,
suppression and noise on rare alleles, and one stored answer per dataset and query."""
