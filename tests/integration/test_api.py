"""The HTTP API's contract on a live worker folding the sample on the real broker: content
negotiation (q-values, text/csv by header, 406), query parameters refused with a 400
naming the parameter, and one representation of every decimal figure."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from services.tracker.broker import EmbeddedKafka
from tests.integration.conftest import Deployment, Worker, start_with_sample, wait_until
from tests.integration.independent_fold import Expected
from tests.integration.reliability import own_deployment

pytestmark = pytest.mark.integration

FIGURE = re.compile(r"\A-?[0-9]+\.[0-9]{4}\Z")


@pytest.fixture(scope="module")
def sample(kafka: EmbeddedKafka, tmp_path_factory: pytest.TempPathFactory,
           expected: Expected) -> Iterator[tuple[Deployment, Worker]]:
    """One worker with the sample folded, shared by the module's tests (the only one that
    writes adds a pair of its own)."""
    deployment = own_deployment(kafka, tmp_path_factory.mktemp("api"))
    running = start_with_sample(deployment, expected)
    yield deployment, running
    running.stop()


@pytest.fixture
def worker(sample: tuple[Deployment, Worker]) -> Worker:
    return sample[1]


def kind_of(answer: httpx.Response) -> str:
    return answer.headers["content-type"].split(";")[0]


@pytest.mark.parametrize(("accept", "kind"), [
    ("text/html;q=0.1, application/json", "application/json"),
    ("application/json;q=0.5, text/html", "text/html"),
    ("text/csv", "text/csv"),
    ("text/csv;q=0.9, text/html;q=0.8", "text/csv"),
    ("text/*;q=0.9, application/json;q=0.2", "text/html"),
    ("application/json;q=0, */*;q=0.1", "text/html"),
    ("*/*", "application/json"),
    ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html"),
    ("image/png, text/csv;q=0.1", "text/csv"),
])
def test_accept_is_weighed_by_q_values(worker: Worker, accept: str, kind: str) -> None:
    for path in ("/commitments/", "/totals/?pair=IN-RU&period=FY2024-25",
                 "/commitments/in-ru-100bn-2030/"):
        answer = worker.get(path, headers={"Accept": accept})
        assert answer.status_code == 200, (path, accept, answer.text[:200])
        assert kind_of(answer) == kind, (path, accept)
        assert "Accept" in answer.headers.get("vary", ""), "caches must key on Accept"


def test_csv_by_header_equals_csv_by_query(worker: Worker) -> None:
    by_header = worker.get("/totals/", params={"pair": "IN-RU", "sector": "all"},
                           headers={"Accept": "text/csv"})
    by_query = worker.get("/totals/", params={"pair": "IN-RU", "sector": "all",
                                              "format": "csv"})
    assert by_header.text == by_query.text
    rows = list(csv.DictReader(io.StringIO(by_header.text)))
    fiscal = {r["period"]: r["value"] for r in rows if r["measure"] == "value_usd"}
    assert fiscal["FY2024-25"] == "68700000000.0000"


def test_format_in_the_query_overrides_accept(worker: Worker) -> None:
    answer = worker.get("/commitments/", params={"format": "csv"},
                        headers={"Accept": "text/html"})
    assert kind_of(answer) == "text/csv"
    assert answer.text.startswith("commitment_id,")


@pytest.mark.parametrize("accept", ["image/png", "application/xml, text/plain;q=0.5",
                                    "application/json;q=0", "text/*;q=0, application/*;q=0",
                                    "garbage"])
def test_what_cannot_be_served_is_a_406_in_json(worker: Worker, accept: str) -> None:
    for path in ("/commitments/", "/totals/", "/commitments/in-ru-100bn-2030/history/"):
        answer = worker.get(path, headers={"Accept": accept})
        assert answer.status_code == 406, (path, accept, answer.text[:200])
        assert kind_of(answer) == "application/json"
        body = answer.json()
        assert body["status"] == 406 and "text/csv" in body["error"], body


def test_errors_are_json_whatever_is_accepted(worker: Worker) -> None:
    answer = worker.get("/totals/", params={"sector": "farming"},
                        headers={"Accept": "text/html"})
    assert answer.status_code == 400 and kind_of(answer) == "application/json"


def test_metrics_are_not_negotiated(worker: Worker) -> None:
    answer = worker.get("/metrics", headers={"Accept": "application/json"})
    assert answer.status_code == 200
    assert kind_of(answer) == "text/plain"
    assert "tracker_total_usd{" in answer.text


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/totals/", {"pair": "INDIA"}, "pair: 'INDIA' is not two country codes"),
    ("/totals/", {"pair": "IN-IN"}, "pair: 'IN-IN'"),
    ("/totals/", {"sector": "farming"}, "sector: 'farming' is not one of"),
    ("/totals/", {"period": "FY2024-26"}, "period: fiscal year 'FY2024-26'"),
    ("/totals/", {"period": "2024-13"}, "period: "),
    ("/totals/", {"as_of": "31/03/2023"}, "as_of: '31/03/2023' is not a date"),
    ("/totals/", {"as_of": "20230331"}, "as_of: '20230331' is not a date"),
    ("/totals/", {"measure": ""}, "measure: "),
    ("/totals/", {"colour": "red"}, "unknown query parameter(s): 'colour'"),
    ("/settlement/", {"sector": "trade"}, "unknown query parameter(s): 'sector'"),
    ("/commitments/", {"format": "xml"}, "format: 'xml' is not one of"),
    ("/commitments/in-ru-100bn-2030/", {"pair": "IN-RU"}, "unknown query parameter(s)"),
    ("/totals/explain/", {"sector": "trade"}, "pair: required"),
])
def test_a_bad_query_is_a_400_naming_the_parameter(worker: Worker, path: str,
                                                   params: dict[str, str], named: str) -> None:
    answer = worker.get(path, params=params)
    assert answer.status_code == 400, (path, params, answer.text[:200])
    assert answer.json()["error"].startswith(named), answer.json()


def test_a_parameter_given_twice_is_refused(worker: Worker) -> None:
    answer = worker.get("/totals/", params=[("pair", "IN-RU"), ("pair", "DE-FR")])
    assert answer.status_code == 400
    assert answer.json()["error"] == "pair: given more than once"


def test_every_figure_has_one_form(worker: Worker) -> None:
    """Totals, shares, commitments, their totals by period, history and explanations: each
    amount, ratio and share is a decimal string with four places."""
    figures: list[str] = []
    figures += [r["value"] for r in worker.get("/totals/").json()["items"]]
    figures += [r["share"] for r in worker.get("/settlement/").json()["items"]]
    for item in worker.get("/commitments/").json()["items"]:
        figures += [item[k] for k in ("target", "achieved", "ratio", "run_rate_per_year")]
    one = worker.get("/commitments/in-ru-100bn-2030/").json()
    figures += [row["value"] for row in one["totals"]]
    for row in worker.get("/commitments/in-ru-100bn-2030/history/").json()["items"]:
        figures += [row["target"], row["achieved"], row["ratio"]]
    report = worker.get("/totals/explain/", params={"pair": "IN-RU",
                                                    "period": "FY2022-23"}).json()
    figures += [report["value"], *[row["amount"] for row in report["largest"]],
                *[row["replaced_amount"] for row in report["corrections"]]]
    assert len(figures) > 500
    assert [f for f in figures if not FIGURE.match(f)] == []
    assert one["achieved"] == "68700000000.0000" and one["ratio"] == "0.6870"


CACHED = ["/totals/?pair=IN-RU&period=FY2024-25", "/totals/", "/settlement/?pair=IN-RU",
          "/commitments/", "/commitments/in-ru-100bn-2030/",
          "/commitments/in-ru-100bn-2030/history/", "/commitments/in-ru-100bn-2030/explain/",
          "/totals/explain/?pair=IN-RU&period=2024"]


@pytest.mark.parametrize("path", CACHED)
def test_an_unchanged_answer_is_a_304(worker: Worker, path: str) -> None:
    first = worker.get(path)
    tag = first.headers["etag"]
    assert first.status_code == 200 and re.fullmatch(r'"[0-9a-f]{24}"', tag), first.headers
    for validator in (tag, f"W/{tag}", f'"nope", {tag}', "*"):
        again = worker.get(path, headers={"If-None-Match": validator})
        assert again.status_code == 304, (path, validator)
        assert again.content == b"" and again.headers["etag"] == tag
    assert worker.get(path, headers={"If-None-Match": '"nope"'}).status_code == 200
    as_csv = worker.get(path, headers={"Accept": "text/csv", "If-None-Match": tag})
    assert as_csv.status_code == 200, "another representation has another tag"
    assert as_csv.headers["etag"] != tag


def test_an_event_changes_the_tag(sample: tuple[Deployment, Worker]) -> None:
    deployment, worker = sample
    path = "/totals/?pair=DE-FR&sector=trade&period=2024"
    before = worker.get(path)
    assert before.json()["items"] == []

    def trade(number: int) -> tuple[str, bytes | None, bytes]:
        return ("trade-transactions", None, orjson.dumps({
            "event_id": f"etag-{number}", "occurred_at": "2024-05-01", "reporter": "DE",
            "partner": "FR", "direction": "import", "amount": "1000", "currency": "USD"}))

    deployment.produce([trade(1)])
    changed = wait_until(lambda: (answer := worker.get(
        path, headers={"If-None-Match": before.headers["etag"]})).status_code == 200
        and answer.json()["items"] and answer, 30, message="the event to be folded")
    assert changed.json()["items"][0]["value"] == "1000.0000"
    tag = changed.headers["etag"]
    assert worker.get(path, headers={"If-None-Match": tag}).status_code == 304
    deployment.produce([trade(2)])
    wait_until(lambda: worker.get(path, headers={"If-None-Match": tag}).status_code == 200,
               30, message="a second event to change the tag")
    assert worker.get(path).json()["items"][0]["value"] == "2000.0000"


def walk(worker: Worker, path: str, **params: str) -> list[httpx.Response]:
    """Every page of a list view, following the next links."""
    pages = [worker.get(path, params=params)]
    while (link := pages[-1].json()["next"]) is not None:
        assert pages[-1].headers["link"] == f'<{link}>; rel="next"'
        pages.append(worker.get(link))
        assert len(pages) < 1000, "the pages never end"
    assert "link" not in pages[-1].headers
    return pages


@pytest.mark.parametrize(("path", "limit"), [("/totals/", "97"), ("/settlement/", "7"),
                                             ("/commitments/", "1")])
def test_pages_follow_one_another_to_the_whole_list(worker: Worker, path: str,
                                                    limit: str) -> None:
    whole = worker.get(path).json()
    assert whole["next"] is None and whole["count"] == len(whole["items"]) > int(limit)
    pages = walk(worker, path, limit=limit)
    assert len(pages) == -(-whole["count"] // int(limit))
    assert all(page.json()["count"] == len(page.json()["items"]) <= int(limit)
               for page in pages)
    assert [item for page in pages for item in page.json()["items"]] == whole["items"]


def test_a_page_in_csv_links_the_next(worker: Worker) -> None:
    first = worker.get("/totals/", params={"pair": "IN-RU", "limit": "10"},
                       headers={"Accept": "text/csv"})
    assert len(first.text.splitlines()) == 11
    link = re.fullmatch(r"<(.+)>; rel=\"next\"", first.headers["link"])
    assert link
    second = worker.get(link.group(1), headers={"Accept": "text/csv"})
    assert second.text.splitlines()[0] == first.text.splitlines()[0]
    assert second.text.splitlines()[1] > first.text.splitlines()[-1]


@pytest.mark.parametrize(("params", "named"), [
    ({"limit": "0"}, "limit: "), ({"limit": "10001"}, "limit: "), ({"limit": "ten"}, "limit: "),
    ({"cursor": "abc"}, "cursor: not a cursor"), ({"cursor": "W10"}, "cursor: not a cursor"),
    ({"cursor": "e30"}, "cursor: not a cursor")])
def test_a_bad_page_is_a_400(worker: Worker, params: dict[str, str], named: str) -> None:
    answer = worker.get("/totals/", params=params)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith(named), answer.json()
