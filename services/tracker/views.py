"""HTTP views of the contract. Any worker answers any key: a request about a pair that
another worker owns is forwarded to it (as Faust's ``table_route`` does), and list views
gather the rows of every worker."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import faust
import orjson
from aiohttp import ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from services.tracker.domain.ledger import KNOWN_SECTORS, totals
from services.tracker.domain.periods import months_of
from services.tracker.domain.progress import commitment_pair, progress
from services.tracker.domain.reference import is_defined
from services.tracker.metrics import TrackerMetrics
from services.tracker.render import BadQuery, Row, error_response, respond
from services.tracker.settings import Settings
from services.tracker.tables import TrackerTables, local_reference

log = logging.getLogger(__name__)

PAIR = re.compile(r"^[A-Z]{2}-[A-Z]{2}$")
FORWARDED = "X-Tracker-Forwarded"
Handler = Callable[[web.Request], Awaitable[web.Response]]


class Views:
    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        for path, handler in (("/health/", self.health), ("/metrics", self.prometheus),
                              ("/totals/", self.totals), ("/commitments/", self.commitments),
                              ("/commitments/{commitment_id}/", self.commitment)):
            self._page(path, handler)

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
        async with (ClientSession(timeout=ClientTimeout(total=15)) as session,
                    session.get(target, headers=headers) as answer):
            return web.Response(body=await answer.read(), status=answer.status,
                                content_type=answer.content_type)

    async def _gather(self, request: web.Request, local_rows: list[Row]) -> list[Row]:
        """Local rows plus every peer's, when this request did not come from a peer."""
        if request.headers.get(FORWARDED):
            return local_rows
        rows = list(local_rows)
        for peer in self._peers():
            target = peer.with_path(request.path).with_query(
                {k: v for k, v in request.query.items() if k != "format"})
            headers = {"Accept": "application/json", FORWARDED: "1"}
            async with (ClientSession(timeout=ClientTimeout(total=15)) as session,
                        session.get(target, headers=headers) as answer):
                if answer.status != 200:
                    raise BadQuery(f"worker {peer} answered {answer.status}", 502)
                rows += orjson.loads(await answer.read())["items"]
        return rows

    # -- views -----------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        recovered = self.app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]
        ready = recovered and not self.app.rebalancing
        body = {"status": "ready" if ready else "recovering", "worker": self.settings.worker_id,
                "tables_recovered": recovered, "rebalancing": bool(self.app.rebalancing)}
        return web.Response(body=orjson.dumps(body), status=200 if ready else 503,
                            content_type="application/json")

    async def prometheus(self, request: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(self.metrics.registry))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def totals(self, request: web.Request) -> web.Response:
        pair = _pair_param(request)
        sector = request.query.get("sector")
        if sector is not None and sector not in KNOWN_SECTORS:
            raise BadQuery(f"sector {sector!r}: use one of {', '.join(KNOWN_SECTORS)}")
        period = request.query.get("period")
        if period is not None:
            try:
                months_of(period)
            except ValueError as error:
                raise BadQuery(str(error)) from None
        measure = request.query.get("measure")
        _reject_unknown(request, {"pair", "sector", "period", "measure", "format"})
        if pair is not None and not request.headers.get(FORWARDED):
            owner = self._owner(pair)
            if not self._is_me(owner):
                return await self._forward(owner, request)
        rows = [row for row in self._local_totals(pair)
                if (sector is None or row["sector"] == sector)
                and (period is None or row["period"] == period)
                and (measure is None or row["measure"] == measure)]
        if pair is None:
            rows = await self._gather(request, rows)
        rows.sort(key=lambda r: (r["pair"], r["sector"], r["measure"], r["period"]))
        return respond(request, "Totals", {"items": rows, "count": len(rows)}, rows)

    def _local_totals(self, pair: str | None) -> list[Row]:
        rows = []
        for key, ledger in list(self.tables.ledgers.items()):
            if ledger is None or (pair is not None and key != pair):
                continue
            for (sector, measure, period), amount in totals(ledger["buckets"]).items():
                rows.append({"pair": key, "sector": sector, "measure": measure,
                             "period": period, "value": str(amount)})
        return rows

    async def commitments(self, request: web.Request) -> web.Response:
        _reject_unknown(request, {"format"})
        rows = [self._progress_row(c) for c in self._commitments().values()
                if is_defined(c) and self._is_me(self._owner(commitment_pair(c)))]
        rows = await self._gather(request, rows)
        rows.sort(key=lambda r: r["commitment_id"])
        return respond(request, "Commitments", {"items": rows, "count": len(rows)}, rows)

    async def commitment(self, request: web.Request) -> web.Response:
        _reject_unknown(request, {"format"})
        commitment_id = request.match_info["commitment_id"]
        found = self._commitments().get(commitment_id)
        if not is_defined(found):
            raise BadQuery(f"no commitment {commitment_id!r}", 404)
        pair = commitment_pair(found)
        owner = self._owner(pair)
        if not self._is_me(owner) and not request.headers.get(FORWARDED):
            return await self._forward(owner, request)
        row = self._progress_row(found)
        ledger = self.tables.ledgers.get(pair)
        contributing = []
        for (sector, measure, period), amount in sorted(totals(
                ledger["buckets"] if ledger else {}).items(), key=lambda kv: kv[0][2]):
            if sector == found["sector"] and measure == found["metric"]:
                contributing.append({"period": period, "value": str(amount)})
        payload = {**row, "definition": found, "totals": contributing}
        return respond(request, f"Commitment {commitment_id}", payload, [row],
                       sections=[("Totals by period", contributing)])

    def _commitments(self) -> dict[str, Any]:
        commitments: dict[str, Any] = local_reference(self.tables)["commitments"]
        return commitments

    def _progress_row(self, commitment: dict[str, Any]) -> Row:
        ledger = self.tables.ledgers.get(commitment_pair(commitment))
        buckets = ledger["buckets"] if ledger else {}
        return progress(commitment, buckets, date.today()).to_json()


def _pair_param(request: web.Request) -> str | None:
    pair = request.query.get("pair")
    if pair is None:
        return None
    parts = pair.upper().split("-")
    if not PAIR.match(pair.upper()) or parts[0] == parts[1]:
        raise BadQuery(f"pair {pair!r}: use two country codes such as IN-RU")
    return "-".join(sorted(parts))


def _reject_unknown(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise BadQuery(f"unknown query parameter(s): {', '.join(unknown)}; "
                       f"allowed: {', '.join(sorted(allowed))}")


