"""Any worker answers any key. A request about one pair goes to the worker that owns the
pair's partition (as Faust's ``table_route`` does), and a list view adds every other
worker's rows to its own. The owners are read from Faust's partition assignment; peers are
asked through one client session per worker, all of them at once."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import faust
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from pydantic import BaseModel, TypeAdapter, ValidationError
from yarl import URL

from services.tracker.domain.ledger import JSON
from services.tracker.partitioning import partition_of
from services.tracker.render import BadQuery
from services.tracker.settings import Settings
from services.tracker.tables import TrackerTables

log = logging.getLogger(__name__)

# Marks a request from another worker: answer it from this worker's own state only.
FORWARDED = "X-Tracker-Forwarded"
PASSED_BACK = ("Vary", "ETag")  # headers of the owner's answer a forwarded one keeps
PEER_TIMEOUT = ClientTimeout(total=15)
Item = TypeVar("Item", bound=BaseModel)


@dataclass
class Gathered(Generic[Item]):
    """What the other workers answered to a list view."""

    rows: list[Item] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    more: bool = False  # a worker had more items than it sent


class PeerClient:
    """Requests to other workers through one client session (and connection pool), which
    lives as long as the worker's web server: opened when it starts, closed when it
    stops."""

    def __init__(self, web_app: web.Application) -> None:
        self._session: ClientSession | None = None
        web_app.cleanup_ctx.append(self._session_while_serving)

    async def _session_while_serving(self, _app: web.Application) -> AsyncIterator[None]:
        async with ClientSession(timeout=PEER_TIMEOUT) as session:
            self._session = session
            yield

    @property
    def session(self) -> ClientSession:
        if self._session is None:
            raise RuntimeError("peers are asked only while the web server runs")
        return self._session

    async def forward(self, owner: URL, request: web.Request) -> web.Response:
        """The owner's answer to ``request``, with its status, type, tag and ``Vary``."""
        target = owner.with_path(request.path).with_query(request.query)
        headers = {"Accept": request.headers.get("Accept", "*/*"), FORWARDED: "1"}
        if "If-None-Match" in request.headers:
            headers["If-None-Match"] = request.headers["If-None-Match"]
        try:
            async with self.session.get(target, headers=headers) as answer:
                response = web.Response(body=await answer.read(), status=answer.status,
                                        content_type=answer.content_type)
                for name in PASSED_BACK:
                    if name in answer.headers:
                        response.headers[name] = answer.headers[name]
                return response
        except (ClientError, TimeoutError) as error:
            log.warning("Could not forward %s to %s: %r", request.path_qs, owner, error)
            raise BadQuery(f"worker {owner} is unreachable; the group is probably "
                           "rebalancing, try again shortly", 503) from None

    async def gather(self, peers: list[URL], request: web.Request,
                     item: type[Item]) -> Gathered[Item]:
        """Every peer's page of items (in JSON, whatever this request negotiated) and its
        entity tag, asked concurrently."""
        answers = await asyncio.gather(*(self._ask(peer, request) for peer in peers))
        try:
            rows = [row for body, _ in answers
                    for row in _rows_of(item).validate_python(body["items"])]
        except ValidationError as error:
            raise BadQuery(f"a worker answered rows of another shape: {error}", 502) from None
        return Gathered(rows, [tag for _, tag in answers],
                        any(body["next"] is not None for body, _ in answers))

    async def _ask(self, peer: URL, request: web.Request) -> tuple[dict[str, Any], str]:
        target = peer.with_path(request.path).with_query(
            {k: v for k, v in request.query.items() if k != "format"})
        headers = {"Accept": "application/json", FORWARDED: "1"}
        try:
            async with self.session.get(target, headers=headers) as answer:
                if answer.status != 200:
                    raise BadQuery(f"worker {peer} answered {answer.status}", 502)
                body: dict[str, Any] = orjson.loads(await answer.read())
                return body, answer.headers.get("ETag", "")
        except (ClientError, TimeoutError) as error:
            # A worker that left is listed until the group rebalances.
            log.warning("Could not gather %s from %s: %r", request.path, peer, error)
            raise BadQuery(f"worker {peer} is unreachable; the group is probably "
                           "rebalancing, try again shortly", 503) from None


class Routing:
    """Which worker owns which pair - the owner of its partition of the ledgers'
    changelog - and the requests that follow from it."""

    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.client = PeerClient(app.web.web_app)  # type: ignore[attr-defined]
        app.on_rebalance_complete.connect(self._log_owners)

    def _topic(self) -> str:
        topic: str = self.tables.ledgers.changelog_topic.get_topic_name()
        return topic

    async def _log_owners(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Which worker owns which partitions: what forwarding and gathering will use."""
        topic = self._topic()
        owners = {host: sorted(tps.get(topic, ()))
                  for host, tps in self.app.assignor.table_metadata(topic).items()}
        log.info("Partitions of %s by worker after the rebalance: %s", topic, owners)

    def owner(self, pair: str) -> URL:
        """The worker whose partition of the ledgers holds ``pair``, by the assignment and
        the tracker's own partitioner. Faust's ``key_store`` asks its producer's
        partitioner instead, which has no partitions to choose from before the producer
        has fetched the changelog topic's metadata: a worker that had written nothing
        yet answered 500 ("'NoneType' object is not iterable")."""
        topic = self._topic()
        partition = partition_of(pair, self.settings.partitions)
        for host, assigned in self.app.assignor.table_metadata(topic).items():
            if partition in assigned.get(topic, ()):
                return URL(str(host))
        raise BadQuery("partitions are being assigned; try again shortly", 503)

    def is_me(self, url: URL) -> bool:
        return (url.host, url.port) == (self.settings.web_host, self.settings.web_port)

    def owns(self, pair: str) -> bool:
        return self.is_me(self.owner(pair))

    def peers(self) -> list[URL]:
        hosts = self.app.assignor.table_metadata(self._topic())
        return [URL(str(h)) for h in hosts if not self.is_me(URL(str(h)))]

    def owned_ledgers(self, pair: str | None) -> list[tuple[str, JSON]]:
        """The ledgers this worker owns (a standby copy, or one of a partition that just
        moved, is another worker's to answer for), or the one of ``pair``."""
        return [(key, ledger) for key, ledger in list(self.tables.ledgers.items())
                if ledger is not None and (pair is None or key == pair) and self.owns(key)]

    async def to_owner(self, pair: str, request: web.Request) -> web.Response | None:
        """The owner's answer when another worker owns ``pair``; None when this worker
        answers (it owns the pair, or the request came from a peer)."""
        if request.headers.get(FORWARDED):
            return None
        owner = self.owner(pair)
        return None if self.is_me(owner) else await self.client.forward(owner, request)

    async def from_peers(self, request: web.Request, item: type[Item],
                         pair: str | None = None) -> Gathered[Item]:
        """Every other worker's page of items and its entity tag, when this request did not
        come from a peer and is not about one ``pair`` (which its owner, this worker once
        ``to_owner`` passed it on, answers alone)."""
        if pair is not None or request.headers.get(FORWARDED):
            return Gathered()
        return await self.client.gather(self.peers(), request, item)


@functools.cache
def _rows_of(item: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[item])  # type: ignore[valid-type]
