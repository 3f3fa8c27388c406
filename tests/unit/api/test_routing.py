"""Requests between workers, against peers served on local ports: one client session for
as long as the web server runs, every peer asked at once, the owner's answer passed back
with its validators, and an unreachable peer a 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from yarl import URL

from services.tracker.api import models
from services.tracker.api.routing import FORWARDED, PeerClient, Routing
from services.tracker.partitioning import partition_of
from services.tracker.render import BadQuery
from services.tracker.settings import Settings

PeerHandler = Callable[[web.Request], Awaitable[web.Response]]


@pytest.fixture
async def client() -> AsyncIterator[PeerClient]:
    """A PeerClient on a web server that is set up, and cleaned up as Faust stops it."""
    web_app = web.Application()
    peers = PeerClient(web_app)
    runner = web.AppRunner(web_app)
    await runner.setup()
    yield peers
    await runner.cleanup()


async def serve(handler: PeerHandler, path: str = "/settlement/") -> TestServer:
    app = web.Application()
    app.router.add_get(path, handler)
    server = TestServer(app)
    await server.start_server()
    return server


def page_of_shares(currency: str) -> dict[str, object]:
    return {"items": [{"pair": "IN-RU", "period": "2024", "currency": currency,
                       "share": "0.5000"}], "count": 1, "as_of": None, "next": None}


async def test_the_session_opens_with_the_web_server_and_closes_with_it() -> None:
    web_app = web.Application()
    peers = PeerClient(web_app)
    with pytest.raises(RuntimeError):
        _ = peers.session
    runner = web.AppRunner(web_app)
    await runner.setup()
    session = peers.session
    assert not session.closed
    await runner.cleanup()
    assert session.closed
    await web_app.cleanup()  # Faust's stop_server cleans the application up a second time


async def test_every_peer_is_asked_at_once(client: PeerClient) -> None:
    asked: list[str] = []
    everyone_asked = asyncio.Event()

    def answering(currency: str) -> PeerHandler:
        async def handler(request: web.Request) -> web.Response:
            assert request.headers[FORWARDED] == "1"
            assert request.headers["Accept"] == "application/json"
            assert "format" not in request.query
            asked.append(currency)
            if len(asked) == 2:
                everyone_asked.set()
            # A peer asked only after the other answered would wait here in vain.
            await asyncio.wait_for(everyone_asked.wait(), 5)
            return web.json_response(page_of_shares(currency), headers={"ETag": f'"{currency}"'})
        return handler

    servers = [await serve(answering("INR")), await serve(answering("RUB"))]
    try:
        request = make_mocked_request("GET", "/settlement/?period=2024&format=csv")
        gathered = await client.gather([server.make_url("/") for server in servers], request,
                                       models.Share)
    finally:
        for server in servers:
            await server.close()
    assert sorted(asked) == ["INR", "RUB"]
    assert sorted(row.currency for row in gathered.rows) == ["INR", "RUB"]
    assert gathered.tags == ['"INR"', '"RUB"']
    assert not gathered.more


async def test_the_owner_answer_keeps_its_status_and_validators(client: PeerClient) -> None:
    async def owner(request: web.Request) -> web.Response:
        assert request.headers[FORWARDED] == "1"
        assert request.headers["If-None-Match"] == '"tag"'
        assert request.headers["Accept"] == "text/csv"
        assert request.query["pair"] == "RU-IN"
        return web.Response(status=304, headers={"ETag": '"tag"', "Vary": "Accept",
                                                 "X-Other": "dropped"})

    server = await serve(owner, "/totals/")
    try:
        request = make_mocked_request("GET", "/totals/?pair=RU-IN", headers={
            "Accept": "text/csv", "If-None-Match": '"tag"'})
        answer = await client.forward(server.make_url("/"), request)
    finally:
        await server.close()
    assert answer.status == 304
    assert answer.headers["ETag"] == '"tag"'
    assert answer.headers["Vary"] == "Accept"
    assert "X-Other" not in answer.headers


async def test_an_unreachable_peer_is_a_503(client: PeerClient) -> None:
    async def never_asked(request: web.Request) -> web.Response:
        raise AssertionError("the server is closed")

    server = await serve(never_asked)
    gone: URL = server.make_url("/")
    await server.close()
    request = make_mocked_request("GET", "/settlement/")
    with pytest.raises(BadQuery) as raised:
        await client.gather([gone], request, models.Share)
    assert raised.value.status == 503
    assert str(gone) in raised.value.message


LEDGERS = "tracker-ledgers-changelog"


def routing_over(distribution: dict[str, dict[str, list[int]]]) -> Routing:
    """Routing for a worker whose assignor holds ``distribution`` (worker URL -> topic ->
    partitions) and whose producer has no metadata yet: nothing may ask it."""
    app = SimpleNamespace(
        web=SimpleNamespace(web_app=web.Application()),
        on_rebalance_complete=SimpleNamespace(connect=lambda receiver: None),
        assignor=SimpleNamespace(table_metadata=lambda topic: {
            url: {name: tps for name, tps in topics.items() if name == topic}
            for url, topics in distribution.items()}),
        producer=None)
    tables = SimpleNamespace(ledgers=SimpleNamespace(
        changelog_topic=SimpleNamespace(get_topic_name=lambda: LEDGERS)))
    return Routing(app, Settings(partitions=4), tables)  # type: ignore[arg-type]


def test_the_owner_of_a_pair_is_the_worker_assigned_its_partition() -> None:
    mine = partition_of("IN-RU", 4)
    others = [partition for partition in range(4) if partition != mine]
    routing = routing_over({"http://a:6066": {LEDGERS: others, "other-topic": [mine]},
                            "http://b:6067": {LEDGERS: [mine]}})
    assert routing.owner("IN-RU") == URL("http://b:6067")
    assert not routing.owns("IN-RU")  # this worker is 127.0.0.1:6066


def test_a_pair_whose_partition_nobody_holds_yet_is_a_503() -> None:
    with pytest.raises(BadQuery) as refused:
        routing_over({}).owner("IN-RU")
    assert refused.value.status == 503
