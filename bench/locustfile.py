"""The crowd for bench/load.py: people browsing and searching the catalogue, opening
datasets, and researchers downloading what they were granted. The plan (ids, tokens)
comes from the JSON file named by LOAD_PLAN.

FastHttpUser (geventhttpclient) rather than HttpUser (requests): the crowd runs on the
same two cores as the server, and requests' client spends several times the CPU per
call, which the server's latency would then pay for."""

from __future__ import annotations

import json
import os
import random
from urllib.parse import quote_plus

from locust import FastHttpUser, between, task

PLAN = json.loads(open(os.environ["LOAD_PLAN"]).read())  # noqa: PTH123, SIM115
SEARCHES: list[str] = PLAN["searches"]
SEARCH_WEIGHTS: list[float] = PLAN["search_weights"]  # cumulative, Zipf (bench/load.py)


def search_string() -> str:
    """A search drawn from the plan's long-tailed distribution, URL-encoded."""
    return quote_plus(random.choices(SEARCHES, cum_weights=SEARCH_WEIGHTS)[0])


class Visitor(FastHttpUser):
    """Someone looking around, signed out."""

    weight = 3
    wait_time = between(0.5, 2.0)

    @task(4)
    def catalogue(self) -> None:
        self.client.get("/datasets/", name="page: catalogue")

    @task(4)
    def search(self) -> None:
        q = search_string()
        self.client.get(f"/datasets/?q={q}&format=VCF", name="page: catalogue search")

    @task(3)
    def dataset(self) -> None:
        dataset = random.choice(PLAN["datasets"])
        self.client.get(f"/datasets/{dataset}/", name="page: dataset")

    @task(3)
    def api_search(self) -> None:
        q = search_string()
        self.client.get(f"/api/v1/datasets?q={q}&duo=DUO:0000042", name="api: search")

    @task(1)
    def static(self) -> None:
        self.client.get("/static/marketplace/css/site.css", name="anchor: static file")


class Researcher(FastHttpUser):
    """A granted researcher fetching their file and checking their request."""

    weight = 1
    wait_time = between(1.0, 3.0)

    def on_start(self) -> None:
        self.grant = random.choice(PLAN["grants"])
        self.auth = {"Authorization": f"Token {self.grant['token']}"}

    @task(2)
    def request(self) -> None:
        self.client.get(
            f"/api/v1/access-requests/{self.grant['request']}",
            name="api: request",
            headers=self.auth,
        )

    @task(1)
    def download(self) -> None:
        self.client.get(self.grant["url"], name="api: download 1 MiB", headers=self.auth)
