"""The HTTP views: one handler per operation of ``openapi.OPERATIONS``, registered on the
Faust app. A handler reads its query (``params``), leaves a pair that another worker owns
to that worker or adds the other workers' rows to a list (``routing``), builds its
answer from the tables (``history`` for a commitment's figures) and shapes it
(``responses``)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import faust
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.tracker import people
from services.tracker.api import models
from services.tracker.api.history import (
    Commitment,
    CommitmentFigures,
    defined_as_of,
    explained_figure,
)
from services.tracker.api.negotiation import Kind
from services.tracker.api.openapi import OPERATIONS, document
from services.tracker.api.paging import Key, by_group
from services.tracker.api.params import (
    CommitmentQuery,
    CommitmentsQuery,
    ExplainTotalsQuery,
    ListQuery,
    SettlementQuery,
    TotalsQuery,
    ViewQuery,
    read_query,
)
from services.tracker.api.responses import (
    answer_tag,
    explained,
    json_errors,
    list_page,
    table,
    tagged,
    unchanged,
)
from services.tracker.api.routing import Gathered, Item, Routing
from services.tracker.domain.ledger import JSON, HeadlineCache, settlement_shares, totals
from services.tracker.domain.progress import commitment_pair
from services.tracker.explain import explain, figure_for_period
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

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Found:
    """The commitment a /commitments/{id}/... request names, as defined on the query's
    day, and the tag of the answer about it."""

    commitment: Commitment
    query: CommitmentQuery
    kind: Kind
    tag: str


class Views:
    """The handlers, named as the operations they answer. A handler's ``BadQuery`` is
    answered as its JSON error, anything else as a 500."""

    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics, headlines: HeadlineCache) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        self.headlines = headlines
        self.routing = Routing(app, settings, tables)
        self.figures = CommitmentFigures(tables, headlines)
        for operation in OPERATIONS:  # what the OpenAPI document lists, and nothing else
            self._page(operation.path, getattr(self, operation.name))
        # Faust's aiohttp driver exposes its Application, whose own errors become JSON too.
        app.web.web_app.middlewares.append(json_errors)  # type: ignore[attr-defined]

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

    def _tag(self, request: web.Request, query: ViewQuery, kind: Kind,
             ledgers: list[tuple[str, JSON]], *more: Any) -> str:
        return answer_tag(request, query, kind, ledgers,
                          local_reference(self.tables)["position"], *more)

    # -- not negotiated ----------------------------------------------------------------------

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

    # -- lists -------------------------------------------------------------------------------

    async def totals(self, request: web.Request) -> web.Response:
        query, kind = read_query(TotalsQuery, request)
        if query.pair is not None and (
                forwarded := await self.routing.to_owner(query.pair, request)) is not None:
            return forwarded
        ledgers = self.routing.owned_ledgers(query.pair)
        peers = await self.routing.from_peers(request, models.Total, query.pair)

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

        return self._listing(
            request, query, kind, ledgers,
            lambda: by_group(ledgers, query.cursor, query.limit, rows_of, key),
            key, peers, "Totals", models.Totals, people.totals)

    async def settlement(self, request: web.Request) -> web.Response:
        query, kind = read_query(SettlementQuery, request)
        if query.pair is not None and (
                forwarded := await self.routing.to_owner(query.pair, request)) is not None:
            return forwarded
        ledgers = self.routing.owned_ledgers(query.pair)
        peers = await self.routing.from_peers(request, models.Share, query.pair)

        def rows_of(pair: str, ledger: JSON) -> list[models.Share]:
            lines = self.headlines.lines(ledger, query.as_of)
            return [models.Share(pair=pair, period=label, currency=currency, share=share)
                    for (label, currency), share in settlement_shares({}, lines=lines).items()
                    if query.period is None or label == query.period]

        def key(row: models.Share) -> Key:
            return (row.pair, row.period, row.currency)

        return self._listing(
            request, query, kind, ledgers,
            lambda: by_group(ledgers, query.cursor, query.limit, rows_of, key),
            key, peers, "Settlement currency shares", models.Shares, people.shares)

    async def commitments(self, request: web.Request) -> web.Response:
        query, kind = read_query(CommitmentsQuery, request)
        peers = await self.routing.from_peers(request, models.Progress)

        def local() -> list[models.Progress]:
            rows = []
            for commitment in self.figures.commitments().values():
                defined = defined_as_of(commitment, query.as_of)
                if defined is not None and self.routing.owns(commitment_pair(defined)):
                    rows.append(self.figures.progress(defined, query.as_of))
            return rows

        # Progress depends on the day (the trailing twelve months end today).
        return self._listing(
            request, query, kind, self.routing.owned_ledgers(None), local,
            lambda r: (r.commitment_id,), peers, "Commitments", models.Commitments,
            people.commitments, query.as_of or date.today())

    def _listing(self, request: web.Request, query: ListQuery, kind: Kind,
                 ledgers: list[tuple[str, JSON]], local: Callable[[], list[Item]],
                 key: Callable[[Item], Key], peers: Gathered[Item], title: str,
                 body: type[models.Totals | models.Shares | models.Commitments],
                 readable: Callable[[list[Row]], list[Row]], *state: Any) -> web.Response:
        """One page of a list view: this worker's items (``local``, built only when the
        client's tag is stale) merged with the peers'. The tag covers the peers' tags and
        whatever else (``state``) the items depend on."""
        tag = self._tag(request, query, kind, ledgers, peers.tags, *state)
        return list_page(request, query, kind, tag, lambda: [*local(), *peers.rows], key,
                         peers.more, title, body, readable)

    # -- one commitment ----------------------------------------------------------------------

    async def commitment(self, request: web.Request) -> web.Response:
        found = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        commitment, as_of = found.commitment, found.query.as_of
        row = self.figures.progress(commitment, as_of)
        contributing = self.figures.period_totals(commitment, as_of)
        payload = models.Commitment(**dict(row), definition=commitment, totals=contributing)

        def readable() -> str:
            chart = history_chart(table(self.figures.history(commitment, as_of)),
                                  commitment["commitment_id"])
            return people.commitment(row.model_dump(mode="json"), table(contributing), chart)

        return tagged(respond(found.kind, f"Commitment {commitment['commitment_id']}",
                              payload, table([row]), readable), found.tag)

    async def history(self, request: web.Request) -> web.Response:
        found = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        commitment = found.commitment
        months = self.figures.history(commitment, found.query.as_of)
        rows = table(months)
        payload = models.History(commitment_id=commitment["commitment_id"], items=months)
        return tagged(respond(
            found.kind, f"History of {commitment['commitment_id']}", payload, rows,
            lambda: history_chart(rows, commitment["commitment_id"]) + to_html_table(
                people.history(rows, commitment["metric"]))), found.tag)

    async def explain_commitment(self, request: web.Request) -> web.Response:
        found = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        commitment = found.commitment
        figure = explained_figure(commitment, found.query.as_of)
        report = models.CommitmentExplanation(commitment_id=commitment["commitment_id"],
                                              **await explain(self.settings, figure))
        return tagged(explained(found.kind, f"Explain {commitment['commitment_id']}", report),
                      found.tag)

    async def _one_commitment(self, request: web.Request) -> Found | web.Response:
        """The commitment a /commitments/{id}/... request names (as of ``as_of``) and the
        answer's entity tag; or the owner's answer when another worker owns its pair, or a
        304 when the client has the answer already."""
        query, kind = read_query(CommitmentQuery, request)
        commitment_id = request.match_info["commitment_id"]
        defined = defined_as_of(self.figures.commitments().get(commitment_id), query.as_of)
        if defined is None:
            when = f" as of {query.as_of}" if query.as_of else ""
            raise BadQuery(f"no commitment {commitment_id!r}{when}", 404)
        pair = commitment_pair(defined)
        if (forwarded := await self.routing.to_owner(pair, request)) is not None:
            return forwarded
        ledger = self.tables.ledgers.get(pair)
        tag = self._tag(request, query, kind, [(pair, ledger)] if ledger else [],
                        query.as_of or date.today())
        if (answer := unchanged(request, tag)) is not None:
            return answer
        return Found(defined, query, kind, tag)

    # -- one total ---------------------------------------------------------------------------

    async def explain_totals(self, request: web.Request) -> web.Response:
        query, kind = read_query(ExplainTotalsQuery, request)
        if (forwarded := await self.routing.to_owner(query.pair, request)) is not None:
            return forwarded
        tag = self._tag(request, query, kind, self.routing.owned_ledgers(query.pair))
        if (answer := unchanged(request, tag)) is not None:
            return answer
        figure = figure_for_period(query.pair, query.sector, query.measure, query.period,
                                   query.as_of)
        report = models.Explanation(**await explain(self.settings, figure))
        return tagged(explained(kind, f"Explain {query.pair}", report), tag)
