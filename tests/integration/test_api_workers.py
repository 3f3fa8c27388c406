"""Paging and validators with two workers, each owning some of eight pairs: the pages a
worker links merge both workers' items into the whole list, and a request forwarded to
a pair's owner carries its tag there and the owner's 304 back."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Deployment, Worker, wait_until
from tests.integration.reliability import PAIRS, stream_of_events, totals_equal

LOCAL = {"X-Tracker-Forwarded": "1"}  # what a peer asks: this worker's own items only


def every_item(worker: Worker, path: str, **params: str) -> list[Any]:
    answer = worker.get(path, params=params).json()
    items = answer["items"]
    while answer["next"] is not None:
        answer = worker.get(answer["next"]).json()
        items += answer["items"]
    return items


def test_pages_and_tags_across_two_workers(deployment: Deployment) -> None:
    first, second = deployment.worker("worker-1"), deployment.worker("worker-2")
    first.start()
    second.start()
    records, expected = stream_of_events(400, seed=15)
    deployment.produce(records)
    for worker in (first, second):
        wait_until(lambda w=worker: totals_equal(w, expected), 60,
                   message=f"{worker.url} to answer every pair")

    def owned(worker: Worker) -> set[str]:
        rows = worker.get("/totals/", params={"period": "2024"}, headers=LOCAL).json()["items"]
        return {row["pair"] for row in rows}

    wait_until(lambda: owned(first) and owned(second), 60, message="both to own pairs")
    assert not owned(first) & owned(second)
    assert len(owned(first) | owned(second)) == len(PAIRS)

    query = {"sector": "trade", "measure": "value_usd"}
    whole = first.get("/totals/", params=query).json()
    assert whole["next"] is None and whole["count"] > 50
    for worker in (first, second):
        assert every_item(worker, "/totals/", limit="7", **query) == whole["items"]
        assert every_item(worker, "/totals/", limit="1", period="2023", **query) == [
            row for row in whole["items"] if row["period"] == "2023"]

    # A gathered list: the tag covers both workers' positions.
    tag = first.get("/totals/", params=query).headers["etag"]
    assert first.get("/totals/", params=query,
                     headers={"If-None-Match": tag}).status_code == 304
    # A forwarded request: the owner's tag, and the owner's 304.
    for pair in sorted(owned(second)):
        path = f"/totals/?pair={pair}&period=2023"
        at_owner = second.get(path)
        via_first = first.get(path)
        assert via_first.json() == at_owner.json()
        assert via_first.headers["etag"] == at_owner.headers["etag"]
        again = first.get(path, headers={"If-None-Match": at_owner.headers["etag"]})
        assert again.status_code == 304, pair
