"""Hypothesis-driven queries against a running worker's views: whatever the query string,
the answer is 200 or a 4xx whose body is {"error": str, "status": int} - never a 5xx - and
the worker stays healthy."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from services.tracker.api.paging import encode_cursor
from services.tracker.broker import EmbeddedKafka
from tests.integration.conftest import Worker, wait_until
from tests.integration.reliability import own_deployment

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
COMMITMENT = "in-ru-fuzz"
MAX_LINE = 8000  # aiohttp refuses request lines over 8190 bytes before the views see them


@pytest.fixture(scope="module")
def worker(kafka: EmbeddedKafka, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker with two pairs, a (refused) year-9999 event and a commitment, shared by
    every example."""
    deployment = own_deployment(kafka, tmp_path_factory.mktemp("http-fuzz"))
    running = deployment.worker()
    running.start()

    def trade(number: int, reporter: str, partner: str, day: str) -> bytes:
        return orjson.dumps({"event_id": f"h-{number}", "occurred_at": day,
                             "reporter": reporter, "partner": partner, "direction": "import",
                             "amount": "1000", "currency": "USD"})

    deployment.produce([
        ("trade-transactions", None, trade(1, "IN", "RU", "2024-05-01")),
        ("trade-transactions", None, trade(2, "DE", "FR", "2024-06-01")),
        ("trade-transactions", None, trade(3, "DE", "FR", "9999-12-31")),
        ("commitments", COMMITMENT.encode(), orjson.dumps({
            "event_id": "h-c", "occurred_at": "2024-01-01", "commitment_id": COMMITMENT,
            "action": "declared", "parties": ["RU", "IN"], "sector": "trade",
            "metric": "value_usd", "target": "5000", "period_start": "2024-01-01",
            "deadline": "2030-12-31", "source": "fuzz"})),
    ])
    wait_until(lambda: running.get(f"/commitments/{COMMITMENT}/").json()["achieved"]
               == "1000.0000", 60, message="the fuzz data to be folded")
    wait_until(lambda: len(running.get("/totals/", params={"period": "2024"}).json()["items"])
               >= 4, 30, message="totals of both pairs")
    yield running
    running.stop()


def check(answer: httpx.Response) -> None:
    """The property every answer must have."""
    status = answer.status_code
    request = f"{answer.request.method} {str(answer.request.url)[:300]}"
    assert status < 500, f"{request} -> {status} {answer.text[:300]}"
    if status == 200:
        return
    assert 400 <= status < 500, f"{request} -> {status}"
    assert answer.headers["content-type"].startswith("application/json"), (
        f"{request} -> {status} {answer.headers['content-type']} {answer.text[:200]}")
    body = answer.json()
    assert set(body) == {"error", "status"}, (request, body)
    assert isinstance(body["error"], str) and body["error"].strip(), (request, body)
    assert body["status"] == status, (request, body)


def get(worker: Worker, path: str, params: list[tuple[str, str]],
        accept: str | None = None) -> httpx.Response:
    url = httpx.URL(f"{worker.url}{path}", params=params)
    assume(len(url.raw_path) < MAX_LINE)
    headers = {"Accept": accept} if accept is not None else {}
    return httpx.get(url, headers=headers, timeout=20)


# Values: the right ones, near misses, odd unicode and long ones.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
NEAR = st.sampled_from([
    "IN-RU", "in-ru", "RU-IN", "DE-FR", "IN-IN", "IN-RU ", " IN-RU", "IN_RU", "IN-RU-CN",
    "IN-RU\n", "IN-RU\r\n", "IN-\u0131n", "\ufb00-in", "\uff29\uff2e-\uff32\uff35", "I\u0307N-RU",
    "trade", "energy", "defense", "all", "TRADE", "farming", "",
    "2024", "FY2024-25", "2024-05", "FY2024-26", "2024-13", "2024-00", "0000", "0001",
    "FY0000-01", "FY9999-00", "10000", "10000-01", "2024\n", "\u0662\u0660\u0662\u0664",
    "value_usd", "bbl", "order_book_usd", "json", "csv", "html", "xml", "CSV",
    "2024-06-30", "0001-01-01", "9999-12-31", "2024-02-30", "2024-6-30", "20240630",
    "%", "%zz", "%00", "\x00", "'", "\"", "<script>", "{}", "[]", "null", "NaN", "-1",
    "\u202e", "\U0001f1ee\U0001f1f3", "\ud7ff", "\ufeff",
    "1", "10", "10000", "10001", "1e3", "0x10", encode_cursor(("IN-RU",)),
    encode_cursor(("IN-RU", "trade", "value_usd", "2024")), encode_cursor(("\x00",)),
])
LONG = st.integers(200, 3000).map(lambda n: "A" * n) | st.integers(10, 300).map(
    lambda n: "\u00e9\u20ac\U0001f600" * n)
VALUE = NEAR | TEXT | LONG
KNOWN_KEYS = ["pair", "sector", "period", "measure", "format", "as_of", "limit", "cursor"]
KEY = st.sampled_from(KNOWN_KEYS) | st.sampled_from(["colour", "PAIR", "pair ", ""]) | TEXT
PARAMS = st.lists(st.tuples(KEY, VALUE), max_size=5)
ACCEPT = st.none() | st.sampled_from(["application/json", "text/html", "text/csv", "*/*",
                                      "text/html;q=0.1, application/json", "", "garbage/x",
                                      "text/*;q=0.5, */*;q=0", "application/json;q=nan",
                                      ";;,,;q=", "*/*;q=0.0001, text/csv;q=1.5"])


@FUZZ
@given(params=PARAMS, accept=ACCEPT)
@example(params=[("as_of", "9999-12-31"), ("period", "9999")], accept=None)
@example(params=[("as_of", "0001-01-01"), ("format", "html")], accept=None)
def test_totals(worker: Worker, params: list[tuple[str, str]], accept: str | None) -> None:
    check(get(worker, "/totals/", params, accept))


@FUZZ
@given(params=st.lists(st.tuples(st.sampled_from(["format", "as_of", "limit", "cursor", ""])
                                 | TEXT, VALUE),
                       max_size=3), accept=ACCEPT)
def test_commitments(worker: Worker, params: list[tuple[str, str]], accept: str | None) -> None:
    check(get(worker, "/commitments/", params, accept))


@FUZZ
@given(commitment_id=st.sampled_from([COMMITMENT, COMMITMENT.upper(), "nope", "..", "."])
       | TEXT.filter(bool) | LONG,
       params=st.lists(st.tuples(st.sampled_from(["format", "as_of", "id"]) | TEXT, VALUE),
                       max_size=3),
       accept=ACCEPT)
@example(commitment_id=COMMITMENT, params=[("as_of", "9999-12-31")], accept="text/html")
@example(commitment_id=COMMITMENT, params=[("as_of", "0001-01-01")], accept=None)
@example(commitment_id=COMMITMENT, params=[("as_of", "2024-05-31"), ("format", "csv")],
         accept=None)
def test_one_commitment(worker: Worker, commitment_id: str, params: list[tuple[str, str]],
                        accept: str | None) -> None:
    assume(commitment_id not in (".", ".."))  # a client resolves these dot segments itself
    # Braces never reach the view: see test_unrouted_requests_get_a_json_error.
    assume(not set(commitment_id) & {"{", "}"})
    check(get(worker, f"/commitments/{quote(commitment_id, safe='')}/", params, accept))


@settings(FUZZ, max_examples=40)
@given(path=st.sampled_from(["/settlement/", f"/commitments/{COMMITMENT}/history/",
                             "/commitments/nope/history/"]),
       params=PARAMS, accept=ACCEPT)
@example(path=f"/commitments/{COMMITMENT}/history/", params=[("as_of", "9999-12-31")],
         accept="text/html")
@example(path=f"/commitments/{COMMITMENT}/history/", params=[("as_of", "0001-01-01")],
         accept=None)
def test_other_views(worker: Worker, path: str, params: list[tuple[str, str]],
                     accept: str | None) -> None:
    """The same property on the views added since (settlement shares, history)."""
    check(get(worker, path, params, accept))


def test_known_answers_have_the_documented_shape(worker: Worker) -> None:
    """The fuzzing above would pass on a worker that answers 400 to everything."""
    rows = worker.get("/totals/", params={"pair": "ru-in", "period": "2024"}).json()["items"]
    assert {row["value"] for row in rows if row["sector"] == "trade"} == {"1000.0000"}
    one = worker.get(f"/commitments/{COMMITMENT}/", params={"format": "csv"})
    assert one.status_code == 200 and one.text.startswith("commitment_id,")
    for path, params in [("/totals/", {"period": "FY2024-26"}), ("/totals/", {"pair": "IN"}),
                         ("/commitments/", {"pair": "IN-RU"}), ("/commitments/nope/", {})]:
        check(worker.get(path, params=params))
        assert worker.get(path, params=params).status_code in (400, 404)


def test_the_worker_is_still_healthy(worker: Worker) -> None:
    assert worker.alive
    assert worker.get("/health/").status_code == 200
    assert worker.get("/totals/", params={"pair": "IN-RU"}).status_code == 200


@pytest.mark.parametrize("pair", ["IN-RU\n", "IN-RU\r\n", "IN-R\u00dc", "IN-"])
def test_a_pair_that_is_not_two_country_codes_is_refused(worker: Worker, pair: str) -> None:
    answer = worker.get("/totals/", params={"pair": pair})
    assert answer.status_code == 400, (pair, answer.status_code, answer.text[:200])
    check(answer)


@pytest.mark.parametrize("pair", ["\u0131n-ru", "\ufb00-in"])
def test_a_pair_in_non_ascii_letters_is_refused(worker: Worker, pair: str) -> None:
    answer = worker.get("/totals/", params={"pair": pair})
    assert answer.status_code == 400, (pair, answer.status_code, answer.text[:200])


def test_every_period_the_totals_list_can_be_queried(worker: Worker) -> None:
    """A year-9999 event is refused (dates outside 1900-2199 are typos); the period label
    itself is still a valid query, answered with no rows."""
    listed = worker.get("/totals/", params={"pair": "DE-FR"}).json()["items"]
    assert "9999" not in {row["period"] for row in listed}
    for period in {row["period"] for row in listed} | {"9999", "FY9999-00"}:
        answer = worker.get("/totals/", params={"pair": "DE-FR", "period": period})
        assert answer.status_code == 200, (period, answer.text[:200])


@pytest.mark.parametrize("path", ["/commitments/%7Bx%7D/", "/totals"])
def test_unrouted_requests_get_a_json_error(worker: Worker, path: str) -> None:
    answer = httpx.get(f"{worker.url}{path}", timeout=20)
    assert answer.status_code == 404
    check(answer)


def raw_request(worker: Worker, target: bytes) -> tuple[bytes, bytes]:
    """Send a request line as given (no client-side checks); returns (status line, head)."""
    port = int(worker.env["TRACKER_WEB_PORT"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, _ = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], head


def test_malformed_request_lines_are_refused_and_harmless(worker: Worker) -> None:
    for target in (b"/totals/?pair=\xff\xfe", b"/totals/?period=%zz%", b"/totals/?\x00=1"):
        status_line, _ = raw_request(worker, target)
        assert status_line.split(b" ")[1].startswith(b"4"), (target, status_line)
    assert worker.get("/health/").status_code == 200


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "KNOWN LIMITATION (aiohttp, below the views): a request line over 8190 bytes is "
    "refused by aiohttp's parser with a text/plain 400 before any view runs, so this bad "
    "query gets no JSON error body"))
def test_an_overlong_query_gets_a_json_error(worker: Worker) -> None:
    answer = httpx.get(f"{worker.url}/totals/", params={"period": "9" * 9000}, timeout=20)
    assert answer.status_code == 400
    assert worker.get("/health/").status_code == 200
    check(answer)


def test_encoded_dot_segments_stay_in_the_id(worker: Worker) -> None:
    """Dot segments and encoded slashes stay inside the commitment id."""
    for commitment_id in ("..%2F..%2Fhealth", "%2e%2e%2fmetrics"):
        answer = httpx.get(f"{worker.url}/commitments/{commitment_id}/", timeout=20)
        assert answer.status_code == 404, answer.text[:200]
        check(answer)
