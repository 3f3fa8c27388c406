"""HTTP views of the contract. Any worker answers any key: a request about a pair that
another worker owns is forwarded to it (as Faust's ``table_route`` does), and list views
gather the rows of every worker. What a view accepts and answers is declared in
``services.tracker.api``."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

import faust
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, TypeAdapter, ValidationError
from yarl import URL

from schemas.events import SETTLEMENT_SHARE
from services.tracker import people
from services.tracker.api import models
from services.tracker.api.caching import entity_tag, matches, not_modified
from services.tracker.api.negotiation import Kind, negotiate
from services.tracker.api.openapi import OPERATIONS, document
from services.tracker.api.paging import Key, by_group, encode_cursor, page_of
from services.tracker.api.params import (
    CommitmentQuery,
    CommitmentsQuery,
    ExplainTotalsQuery,
    ListQuery,
    SettlementQuery,
    TotalsQuery,
    ViewQuery,
    parse_query,
)
from services.tracker.domain.flows import VALUE
from services.tracker.domain.ledger import (
    JSON,
    Headline,
    HeadlineCache,
    monthly_series,
    settlement_shares,
    totals,
)
from services.tracker.domain.periods import month_label, months_between
from services.tracker.domain.progress import commitment_pair, month_end, progress
from services.tracker.domain.reference import definition_as_of, is_defined
from services.tracker.explain import Figure, explain, figure_for_period
from services.tracker.metrics import TrackerMetrics
from services.tracker.render import (
    BadQuery,
    Row,
    error_response,
    history_chart,
    respond,
    to_html_table,
)
from services.tracker.settings import Settings
from services.tracker.tables import TrackerTables, local_reference

log = logging.getLogger(__name__)

FORWARDED = "X-Tracker-Forwarded"
PASSED_BACK = ("Vary", "ETag")  # headers of the owner's answer a forwarded one keeps
Handler = Callable[[web.Request], Awaitable[web.Response]]
Item = TypeVar("Item", bound=BaseModel)


class Views:
    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics, headlines: HeadlineCache) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        self.headlines = headlines
        self._session: ClientSession | None = None
        for operation in OPERATIONS:  # what the OpenAPI document lists, and nothing else
            self._page(operation.path, getattr(self, operation.name))
        # Faust's aiohttp driver exposes its Application; errors raised by aiohttp itself
        # (no route matched, wrong method) get the same JSON body as the views' errors.
        web_app = app.web.web_app  # type: ignore[attr-defined]
        web_app.middlewares.append(json_errors)
        web_app.on_cleanup.append(self._close_session)
        app.on_rebalance_complete.connect(self._log_owners)

    async def _log_owners(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Which worker owns which partitions: what forwarding and gathering will use."""
        topic = self.tables.ledgers.changelog_topic.get_topic_name()
        owners = {host: sorted(tps.get(topic, ()))
                  for host, tps in self.app.assignor.table_metadata(topic).items()}
        log.info("Partitions of %s by worker after the rebalance: %s", topic, owners)

    def _page(self, path: str, handler: Handler) -> None:
        async def get(view: faust.web.View, request: web.Request,
                      **match_info: str) -> web.Response:
            try:
                return await handler(request)
            except BadQuery as error:
                return error_response(error.message, error.status)
            except Exception:
                log.exception("Failed to answer %s", request.path_qs)
                return error_response("internal error; see the worker log", 500)

        get.__name__ = handler.__name__
        self.app.page(path, name=f"tracker-{handler.__name__}")(get)  # type: ignore[arg-type]

    # -- routing -------------------------------------------------------------------------

    @property
    def session(self) -> ClientSession:
        """One client session (and connection pool) for every request to a peer."""
        if self._session is None or self._session.closed:
            self._session = ClientSession(timeout=ClientTimeout(total=15))
        return self._session

    async def _close_session(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _owner(self, pair: str) -> URL:
        topic = self.tables.ledgers.changelog_topic.get_topic_name()
        try:
            return URL(str(self.app.assignor.key_store(topic, pair.encode())))
        except KeyError:
            raise BadQuery("partitions are being assigned; try again shortly", 503) from None

    def _is_me(self, url: URL) -> bool:
        return (url.host, url.port) == (self.settings.web_host, self.settings.web_port)

    def _peers(self) -> list[URL]:
        topic = self.tables.ledgers.changelog_topic.get_topic_name()
        hosts = self.app.assignor.table_metadata(topic)
        return [URL(str(h)) for h in hosts if not self._is_me(URL(str(h)))]

    async def _forward(self, url: URL, request: web.Request) -> web.Response:
        target = url.with_path(request.path).with_query(request.query)
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
            log.warning("Could not forward %s to %s: %r", request.path_qs, url, error)
            raise BadQuery(f"worker {url} is unreachable; the group is probably "
                           "rebalancing, try again shortly", 503) from None

    async def _from_peers(self, request: web.Request, item: type[Item]) -> Gathered[Item]:
        """Every other worker's page of items and its entity tag (asked concurrently), when
        this request did not come from a peer."""
        if request.headers.get(FORWARDED):
            return Gathered()
        answers = await asyncio.gather(*(self._ask_peer(peer, request)
                                         for peer in self._peers()))
        try:
            rows = [row for body, _ in answers
                    for row in _rows_of(item).validate_python(body["items"])]
        except ValidationError as error:
            raise BadQuery(f"a worker answered rows of another shape: {error}", 502) from None
        return Gathered(rows, [tag for _, tag in answers],
                        any(body["next"] is not None for body, _ in answers))

    async def _ask_peer(self, peer: URL, request: web.Request) -> tuple[dict[str, Any], str]:
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

    async def _listing(self, request: web.Request, query: ListQuery, kind: Kind,
                       ledgers: list[tuple[str, JSON]], local: Callable[[], list[Item]],
                       key: Callable[[Item], Key], peers: Gathered[Item], title: str,
                       body: type[models.Totals | models.Shares | models.Commitments],
                       readable: Callable[[list[Row]], list[Row]], *state: Any
                       ) -> web.Response:
        """One page of a list view: this worker's items (``local``, built only when the
        client's tag is stale) merged with the peers'."""
        tag = self._tag(request, query, kind, ledgers, peers.tags, *state)
        if matches(request.headers.get("If-None-Match"), tag):
            return not_modified(tag)
        page, last = page_of([*local(), *peers.rows], key, query.limit, query.cursor,
                             peers.more)
        link = str(request.rel_url.update_query(cursor=encode_cursor(last))) if last else None
        payload = body(items=page, count=len(page), as_of=query.as_of, next=link)
        rows = _table(page)
        response = respond(kind, title, payload, rows,
                           lambda: to_html_table(readable(rows)))
        if link:  # for CSV and HTML too, whose bodies cannot carry it
            response.headers["Link"] = f'<{link}>; rel="next"'
        return _tagged(response, tag)

    def _tag(self, request: web.Request, query: ViewQuery, kind: Kind,
             ledgers: list[tuple[str, JSON]], *more: Any) -> str:
        """The entity tag of an answer built from ``ledgers`` and the reference data. A
        ledger's head position moves with every record applied to the pair."""
        return entity_tag(request.path, query.model_dump(mode="json"), kind,
                          [(key, ledger["position"]) for key, ledger in ledgers],
                          local_reference(self.tables)["position"], *more)

    # -- views -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        recovered = self.app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        ready = recovered and not self.app.rebalancing
        body = models.Health(status="ready" if ready else "recovering",
                             worker=self.settings.worker_id, tables_recovered=recovered,
                             rebalancing=bool(self.app.rebalancing))
        return web.Response(body=body.model_dump_json(), status=200 if ready else 503,
                            content_type="application/json")

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(document()), content_type="application/json")

    async def prometheus(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def totals(self, request: web.Request) -> web.Response:
        query, kind = _read(TotalsQuery, request)
        if query.pair is not None and (forwarded := await self._to_owner(query.pair, request)):
            return forwarded
        ledgers = self._local_ledgers(query.pair)
        peers = await self._from_peers(request, models.Total) if query.pair is None else (
            Gathered[models.Total]())

        def rows_of(pair: str, ledger: JSON) -> list[models.Total]:
            lines = self.headlines.lines(ledger, query.as_of)
            return [models.Total(pair=pair, sector=sector, measure=measure, period=period,
                                 value=amount)
                    for (sector, measure, period), amount in totals({}, lines=lines).items()
                    if (query.sector is None or sector == query.sector)
                    and (query.period is None or period == query.period)
                    and (query.measure is None or measure == query.measure)]

        def key(row: models.Total) -> Key:
            return (row.pair, row.sector, row.measure, row.period)

        return await self._listing(
            request, query, kind, ledgers,
            lambda: by_group(ledgers, query.cursor, query.limit, rows_of, key),
            key, peers, "Totals", models.Totals, people.totals)

    def _local_ledgers(self, pair: str | None) -> list[tuple[str, JSON]]:
        """The ledgers this worker owns (a standby copy, or one of a partition that just
        moved, is another worker's to answer for), or the one of ``pair``."""
        return [(key, ledger) for key, ledger in list(self.tables.ledgers.items())
                if ledger is not None and (pair is None or key == pair)
                and self._is_me(self._owner(key))]

    async def settlement(self, request: web.Request) -> web.Response:
        query, kind = _read(SettlementQuery, request)
        if query.pair is not None and (forwarded := await self._to_owner(query.pair, request)):
            return forwarded
        ledgers = self._local_ledgers(query.pair)
        peers = await self._from_peers(request, models.Share) if query.pair is None else (
            Gathered[models.Share]())

        def rows_of(pair: str, ledger: JSON) -> list[models.Share]:
            lines = self.headlines.lines(ledger, query.as_of)
            return [models.Share(pair=pair, period=label, currency=currency, share=share)
                    for (label, currency), share in settlement_shares({}, lines=lines).items()
                    if query.period is None or label == query.period]

        def key(row: models.Share) -> Key:
            return (row.pair, row.period, row.currency)

        return await self._listing(
            request, query, kind, ledgers,
            lambda: by_group(ledgers, query.cursor, query.limit, rows_of, key),
            key, peers, "Settlement currency shares", models.Shares, people.shares)

    async def commitments(self, request: web.Request) -> web.Response:
        query, kind = _read(CommitmentsQuery, request)
        peers = await self._from_peers(request, models.Progress)

        def local() -> list[models.Progress]:
            rows = []
            for commitment in self._commitments().values():
                defined = self._defined(commitment, query.as_of)
                if defined is not None and self._is_me(self._owner(commitment_pair(defined))):
                    rows.append(self._progress(defined, query.as_of))
            return rows

        # Progress depends on the day (the trailing twelve months end today).
        return await self._listing(
            request, query, kind, self._local_ledgers(None), local,
            lambda r: (r.commitment_id,), peers, "Commitments", models.Commitments,
            people.commitments, query.as_of or date.today())

    async def commitment(self, request: web.Request) -> web.Response:
        found, query, kind, tag = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        row = self._progress(found, query.as_of)
        contributing = [
            models.PeriodTotal(period=period, value=amount)
            for (sector, measure, period), amount in sorted(totals(
                {}, lines=self._lines(found, query.as_of)).items(), key=lambda kv: kv[0][2])
            if sector == found["sector"] and measure == found["metric"]]
        payload = models.Commitment(**dict(row), definition=found, totals=contributing)

        def readable() -> str:
            chart = history_chart(_table(self._history(found, query.as_of)),
                                  found["commitment_id"])
            return people.commitment(row.model_dump(mode="json"), _table(contributing), chart)

        return _tagged(respond(kind, f"Commitment {found['commitment_id']}", payload,
                               _table([row]), readable), tag)

    async def history(self, request: web.Request) -> web.Response:
        found, query, kind, tag = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        months = self._history(found, query.as_of)
        rows = _table(months)
        payload = models.History(commitment_id=found["commitment_id"], items=months)
        return _tagged(respond(
            kind, f"History of {found['commitment_id']}", payload, rows,
            lambda: history_chart(rows, found["commitment_id"]) + to_html_table(
                people.history(rows, found["metric"]))), tag)

    async def explain_commitment(self, request: web.Request) -> web.Response:
        found, query, kind, tag = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        measure = VALUE if found["metric"] == SETTLEMENT_SHARE else found["metric"]
        start, last = date.fromisoformat(found["period_start"]), query.as_of or date.today()
        months = frozenset(months_between(month_label(start), month_label(min(
            last, date.fromisoformat(found["deadline"])))))
        figure = Figure(commitment_pair(found), found["sector"], measure, months, query.as_of)
        report = models.CommitmentExplanation(commitment_id=found["commitment_id"],
                                              **await explain(self.settings, figure))
        return _tagged(_explained(kind, f"Explain {found['commitment_id']}", report), tag)

    async def explain_totals(self, request: web.Request) -> web.Response:
        query, kind = _read(ExplainTotalsQuery, request)
        if (forwarded := await self._to_owner(query.pair, request)):
            return forwarded
        tag = self._tag(request, query, kind, self._local_ledgers(query.pair))
        if matches(request.headers.get("If-None-Match"), tag):
            return not_modified(tag)
        figure = figure_for_period(query.pair, query.sector, query.measure, query.period,
                                   query.as_of)
        report = models.Explanation(**await explain(self.settings, figure))
        return _tagged(_explained(kind, f"Explain {query.pair}", report), tag)

    async def _one_commitment(self, request: web.Request
                              ) -> tuple[dict[str, Any] | web.Response, CommitmentQuery, Kind,
                                         str]:
        """The commitment a /commitments/{id}/... request names (as of ``as_of``) and the
        answer's entity tag; or the owner's answer when another worker owns its pair, or a
        304 when the client has the answer already."""
        query, kind = _read(CommitmentQuery, request)
        commitment_id = request.match_info["commitment_id"]
        found = self._commitments().get(commitment_id)
        defined = self._defined(found, query.as_of) if found is not None else None
        if defined is None:
            when = f" as of {query.as_of}" if query.as_of else ""
            raise BadQuery(f"no commitment {commitment_id!r}{when}", 404)
        if forwarded := await self._to_owner(commitment_pair(defined), request):
            return forwarded, query, kind, ""
        pair = commitment_pair(defined)
        ledger = self.tables.ledgers.get(pair)
        tag = self._tag(request, query, kind, [(pair, ledger)] if ledger else [],
                        query.as_of or date.today())
        if matches(request.headers.get("If-None-Match"), tag):
            return not_modified(tag), query, kind, tag
        return defined, query, kind, tag

    async def _to_owner(self, pair: str, request: web.Request) -> web.Response | None:
        if request.headers.get(FORWARDED):
            return None
        owner = self._owner(pair)
        return None if self._is_me(owner) else await self._forward(owner, request)

    def _commitments(self) -> dict[str, Any]:
        commitments: dict[str, Any] = local_reference(self.tables)["commitments"]
        return commitments

    @staticmethod
    def _defined(commitment: dict[str, Any] | None, as_of: date | None) -> dict[str, Any] | None:
        if commitment is None:
            return None
        if as_of is None:
            return commitment if is_defined(commitment) else None
        return definition_as_of(commitment, as_of)

    def _lines(self, commitment: dict[str, Any], as_of: date | None) -> Headline:
        """The headline of the commitment's pair (as of a day), from the shared cache."""
        ledger = self.tables.ledgers.get(commitment_pair(commitment))
        return self.headlines.lines(ledger, as_of) if ledger else {}

    def _progress(self, commitment: dict[str, Any], as_of: date | None) -> models.Progress:
        day = as_of or date.today()
        return models.Progress.model_validate(
            progress(commitment, {}, day, lines=self._lines(commitment, day)))

    def _history(self, commitment: dict[str, Any], as_of: date | None
                 ) -> list[models.HistoryMonth]:
        """Progress at the end of each month from the period start (or first data)."""
        measure = VALUE if commitment["metric"] == SETTLEMENT_SHARE else commitment["metric"]
        months = sorted(monthly_series({}, commitment["sector"], measure,
                                       lines=self._lines(commitment, as_of)))
        if not months:
            return []
        start = max(month_label(date.fromisoformat(commitment["period_start"])), months[0])
        last = min(months[-1], month_label(as_of or date.today()),
                   month_label(date.fromisoformat(commitment["deadline"])))
        rows = []
        for month in months_between(start, last):
            day = month_end(month)
            snapshot = progress(commitment, {}, day, lines=self._lines(commitment, day))
            rows.append(models.HistoryMonth(
                month=month, target=snapshot.target, achieved=snapshot.achieved,
                ratio=snapshot.ratio, status=snapshot.status))
        return rows


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise
        return error_response(f"{error.reason}: {request.path}", error.status)


Query = TypeVar("Query", bound=ViewQuery)


def _read(model: type[Query], request: web.Request) -> tuple[Query, Kind]:
    """The query, and the representation to answer in: both refused (400, 406) before any
    work is done."""
    query = parse_query(model, request)
    return query, negotiate(request.headers.get("Accept"), query.format)


@dataclass
class Gathered(Generic[Item]):
    """What the other workers answered to a list view."""

    rows: list[Item] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    more: bool = False  # a worker had more items than it sent


def _tagged(response: web.Response, tag: str) -> web.Response:
    response.headers["ETag"] = tag
    return response


@functools.cache
def _rows_of(item: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[item])  # type: ignore[valid-type]


def _table(items: Sequence[BaseModel]) -> list[Row]:
    """Rows for CSV and HTML, with every figure as the JSON body has it."""
    return [item.model_dump(mode="json") for item in items]


def _explained(kind: Kind, title: str, report: models.Explanation) -> web.Response:
    data = report.model_dump(mode="json")
    sections = [(name.replace("_", " "), data[name]) for name in
                ("largest", "hidden_by_mirror_rule", "corrections", "duplicates_ignored",
                 "pending_fx")]
    summary = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
    flat = [{"topic": t, "events": n} for t, n in data["events_by_topic"].items()]

    def readable() -> str:
        parts = [to_html_table([summary]), "<h2>events by topic</h2>", to_html_table(flat)]
        for name, rows in sections:
            parts += [f"<h2>{name}</h2>", to_html_table([_flatten(row) for row in rows])]
        return "\n".join(parts)

    return respond(kind, title, report, [summary], readable)


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if isinstance(v, list | dict) else v
            for k, v in row.items()}
