"""Beacon v2 response documents (framework v2.1.1, the schemas tests validate against):
informational endpoints, collections (`datasets`) and result sets (`g_variants`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from discovery.beacon.answers import DatasetAnswer
from discovery.beacon.selectors import BeaconDataset, FilteringTerm

API_VERSION = "v2.1.1"
FRAMEWORK = f"https://raw.githubusercontent.com/ga4gh-beacon/beacon-v2/{API_VERSION}"
VARIANT_SCHEMA = {"entityType": "genomicVariant", "schema": "beacon-g_variant-v2.1.1"}
DATASET_SCHEMA = {"entityType": "dataset", "schema": "beacon-dataset-v2.1.1"}
GRANULARITY_NOTE = (
    "Boolean datasets give yes or no: their resultsCount 1 means 'at least one'. Count "
    "datasets give the allele count (AC) of the matched alleles, exact for common alleles, "
    "noised and rounded for rare ones; a rare or absent allele is not reported at all."
)

Json = dict[str, Any]


def beacon_id() -> str:
    host = urlsplit(settings.SITE_URL).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + ".beacon"


def _environment() -> str:
    return "dev" if settings.DEBUG else "prod"


def informational_meta() -> Json:
    return {"beaconId": beacon_id(), "apiVersion": API_VERSION, "returnedSchemas": []}


def response_meta(
    *,
    granularity: str,
    requested_granularity: str,
    schema: dict[str, str],
    parameters: dict[str, object],
    filters: Sequence[str],
) -> Json:
    return {
        "beaconId": beacon_id(),
        "apiVersion": API_VERSION,
        "returnedGranularity": granularity,
        "returnedSchemas": [schema],
        "receivedRequestSummary": {
            "apiVersion": API_VERSION,
            "requestedSchemas": [schema],
            "requestedGranularity": requested_granularity,
            "pagination": {"skip": 0, "limit": 0},
            "requestParameters": parameters,
            "filters": list(filters),
        },
    }


def error_document(*, status: int, message: str) -> Json:
    return {
        "meta": {
            "beaconId": beacon_id(),
            "apiVersion": API_VERSION,
            "returnedGranularity": "boolean",
            "returnedSchemas": [],
            "receivedRequestSummary": {
                "apiVersion": API_VERSION,
                "requestedSchemas": [],
                "requestedGranularity": "boolean",
                "pagination": {"skip": 0, "limit": 0},
            },
        },
        "error": {"errorCode": status, "errorMessage": message},
    }


def _organization(root: str) -> Json:
    return {"id": "genemarket", "name": "GeneMarket", "welcomeUrl": root}


def info_document(root: str) -> Json:
    return {
        "meta": informational_meta(),
        "response": {
            "id": beacon_id(),
            "name": "GeneMarket Beacon",
            "apiVersion": API_VERSION,
            "environment": _environment(),
            "organization": _organization(root),
            "description": (
                "Which listed datasets hold a variant, before you buy access: boolean or "
                "count answers per dataset as its donor chose, under a privacy budget."
            ),
            "welcomeUrl": root,
        },
    }


def service_info_document(root: str) -> Json:
    return {
        "id": beacon_id(),
        "name": "GeneMarket Beacon",
        "type": {"group": "org.ga4gh", "artifact": "beacon", "version": API_VERSION},
        "description": "Beacon v2 over the marketplace's listed VCF/BCF datasets.",
        "organization": {"name": "GeneMarket", "url": root},
        "environment": _environment(),
        "version": settings.SPECTACULAR_SETTINGS["VERSION"],
    }


def _entry_types() -> Json:
    return {
        "genomicVariant": {
            "id": "genomicVariant",
            "name": "Genomic variant",
            "ontologyTermForThisType": {"id": "ENSGLOSSARY:0000092", "label": "Variant"},
            "partOfSpecification": f"Beacon {API_VERSION}",
            "defaultSchema": {
                "id": VARIANT_SCHEMA["schema"],
                "name": "Default schema for a genomic variation",
                "referenceToSchemaDefinition": f"{FRAMEWORK}/models/json/beacon-v2-default-"
                "model/genomicVariations/defaultSchema.json",
                "schemaVersion": API_VERSION,
            },
            "nonFilteredQueriesAllowed": True,
        },
        "dataset": {
            "id": "dataset",
            "name": "Dataset",
            "ontologyTermForThisType": {"id": "NCIT:C47824", "label": "Data set"},
            "partOfSpecification": f"Beacon {API_VERSION}",
            "defaultSchema": {
                "id": DATASET_SCHEMA["schema"],
                "name": "Default schema for datasets",
                "referenceToSchemaDefinition": f"{FRAMEWORK}/models/json/beacon-v2-default-"
                "model/datasets/defaultSchema.json",
                "schemaVersion": API_VERSION,
            },
            "aCollectionOf": [{"id": "genomicVariant", "name": "Genomic variants"}],
            "nonFilteredQueriesAllowed": True,
        },
    }


def configuration_document() -> Json:
    return {
        "meta": informational_meta(),
        "response": {
            "$schema": f"{FRAMEWORK}/framework/json/configuration/beaconConfigurationSchema.json",
            "maturityAttributes": {"productionStatus": "DEV" if settings.DEBUG else "PROD"},
            "securityAttributes": {
                "defaultGranularity": "boolean",
                "securityLevels": ["PUBLIC", "REGISTERED"],
            },
            "entryTypes": _entry_types(),
        },
    }


def entry_types_document() -> Json:
    return {"meta": informational_meta(), "response": {"entryTypes": _entry_types()}}


def map_document(root: str) -> Json:
    base = root.rstrip("/")
    return {
        "meta": informational_meta(),
        "response": {
            "$schema": f"{FRAMEWORK}/framework/json/configuration/beaconMapSchema.json",
            "endpointSets": {
                "genomicVariant": {
                    "entryType": "genomicVariant",
                    "rootUrl": f"{base}/g_variants",
                },
                "dataset": {
                    "entryType": "dataset",
                    "rootUrl": f"{base}/datasets",
                    "singleEntryUrl": f"{base}/datasets/{{id}}",
                },
            },
        },
    }


def filtering_terms_document(terms: Sequence[FilteringTerm]) -> Json:
    return {
        "meta": informational_meta(),
        "response": {
            "filteringTerms": [
                {
                    "type": "ontologyTerm",
                    "id": t.id,
                    "label": t.label,
                    "scopes": ["genomicVariant", "dataset"],
                }
                for t in terms
            ],
            "resources": [
                {
                    "id": "DUO",
                    "name": "Data Use Ontology",
                    "url": "http://purl.obolibrary.org/obo/duo.owl",
                    "nameSpacePrefix": "DUO",
                    "iriPrefix": "http://purl.obolibrary.org/obo/DUO_",
                },
                {
                    "id": "EDAM",
                    "name": "EDAM ontology (data formats)",
                    "url": "http://edamontology.org/EDAM.owl",
                    "nameSpacePrefix": "EDAM",
                    "iriPrefix": "http://edamontology.org/",
                },
            ],
        },
    }


def datasets_document(
    *, datasets: Sequence[BeaconDataset], root: str, parameters: Json, filters: Sequence[str]
) -> Json:
    return {
        "meta": response_meta(
            granularity="record",
            requested_granularity="record",
            schema=DATASET_SCHEMA,
            parameters=parameters,
            filters=filters,
        ),
        "responseSummary": {"exists": bool(datasets), "numTotalResults": len(datasets)},
        "response": {
            "collections": [
                {
                    "id": str(d.id),
                    "name": d.title,
                    "description": d.description,
                    "externalUrl": f"{root.rstrip('/')}/datasets/{d.id}",
                    "info": {"beaconGranularity": d.granularity},
                }
                for d in datasets
            ]
        },
    }


def g_variants_document(
    *,
    answers: Sequence[DatasetAnswer],
    requested_granularity: str,
    parameters: Json,
    filters: Sequence[str],
) -> Json:
    """A result-sets response: one result set per dataset that may say it holds the
    variant (no `results`: never record-level). Counts only at count granularity, for
    datasets whose donor chose counts."""
    granularity = "count" if requested_granularity in ("count", "record") else "boolean"
    result_sets = []
    for answer in answers:
        released = answer.released
        if released is None or released.suppressed or not released.exists:
            continue
        counted = granularity == "count" and released.count is not None
        result_sets.append(
            {
                "id": str(answer.dataset.id),
                "setType": "dataset",
                "exists": True,
                "resultsCount": released.count if counted else 1,
                "results": [],
                "info": {
                    "name": answer.dataset.title,
                    "granularity": "count" if counted else "boolean",
                    "countOf": "alleles" if counted else "at least one",
                    "exact": released.exact,
                },
            }
        )
    summary: Json = {"exists": bool(result_sets)}
    if granularity == "count":
        summary["numTotalResults"] = len(result_sets)
    return {
        "meta": response_meta(
            granularity=granularity,
            requested_granularity=requested_granularity,
            schema=VARIANT_SCHEMA,
            parameters=parameters,
            filters=filters,
        ),
        "responseSummary": summary,
        "response": {"resultSets": result_sets},
        "info": {
            "granularityNote": GRANULARITY_NOTE,
            "budgetSpentOn": [str(a.dataset.id) for a in answers if a.released is None],
        },
    }
