"""Consent as GA4GH Data Use Ontology (DUO) codes, and whether a request's purpose fits.

`terms` holds the shipped DUO terms (marketplace/data/duo_terms.csv, from the published
ontology); `codes` parses what clients send; `matching` decides and explains.
"""

from marketplace.consent.codes import ConsentCode, parse_codes
from marketplace.consent.matching import Match, purpose_fits
from marketplace.consent.terms import DuoTerm, all_terms, term

__all__ = ["ConsentCode", "DuoTerm", "Match", "all_terms", "parse_codes", "purpose_fits", "term"]
