"""Consent as GA4GH Data Use Ontology (DUO) codes, and whether a request's purpose fits.

`terms` holds the shipped DUO terms and their relations (marketplace/data/, extracted from
the published ontology); `diseases` the shipped MONDO subset for disease-specific consent;
`codes` parses what clients send; `matching` decides and explains; `index` precomputes
what the catalogue filter looks up.
"""

from marketplace.consent.codes import ConsentCode, parse_codes
from marketplace.consent.matching import MATCHER_VERSION, Match, Outcome, purpose_fits
from marketplace.consent.terms import DuoTerm, all_terms, term

__all__ = [
    "MATCHER_VERSION",
    "ConsentCode",
    "DuoTerm",
    "Match",
    "Outcome",
    "all_terms",
    "parse_codes",
    "purpose_fits",
    "term",
]
