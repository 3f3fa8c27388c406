"""HTTP views of the contract. Any worker answers any key: a request about a pair that
another worker owns is forwarded to it (as Faust's ``table_route`` does), and list views
gather the rows of every worker."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any

import faust
import orjson
from aiohttp import ClientError, ClientSession, ClientTimeout, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from yarl import URL

from schemas.events import SETTLEMENT_SHARE
from services.tracker.domain.flows import VALUE
from services.tracker.domain.ledger import (
    JSON,
    KNOWN_SECTORS,
    Headline,
    HeadlineCache,
    monthly_series,
    settlement_shares,
    totals,
)
from services.tracker.domain.periods import month_label, months_between, months_of
from services.tracker.domain.progress import commitment_pair, month_end, progress
from services.tracker.domain.reference import definition_as_of, is_defined
from services.tracker.explain import Figure, explain, figure_for_period
from services.tracker.metrics import TrackerMetrics
from services.tracker.render import BadQuery, Row, error_response, history_chart, respond
from services.tracker.settings import Settings
from services.tracker.tables import TrackerTables, local_reference

log = logging.getLogger(__name__)

PAIR = re.compile(r"\A[A-Za-z]{2}-[A-Za-z]{2}\Z")  # checked before upper(): ASCII only
FORWARDED = "X-Tracker-Forwarded"
Handler = Callable[[web.Request], Awaitable[web.Response]]


class Views:
    def __init__(self, app: faust.App, settings: Settings, tables: TrackerTables,
                 metrics: TrackerMetrics, headlines: HeadlineCache) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.metrics = metrics
        self.headlines = headlines
        for path, handler in (
                ("/health/", self.health), ("/metrics", self.prometheus),
                ("/totals/", self.totals), ("/totals/explain/", self.explain_totals),
                ("/settlement/", self.settlement), ("/commitments/", self.commitments),
                ("/commitments/{commitment_id}/", self.commitment),
                ("/commitments/{commitment_id}/history/", self.history),
                ("/commitments/{commitment_id}/explain/", self.explain_commitment)):
            self._page(path, handler)
        # Faust's aiohttp driver exposes its Application; errors raised by aiohttp itself
        # (no route matched, wrong method) get the same JSON body as the views' errors.
        app.web.web_app.middlewares.append(json_errors)  # type: ignore[attr-defined]
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
            try:
                async with (ClientSession(timeout=ClientTimeout(total=15)) as session,
                            session.get(target, headers=headers) as answer):
                    if answer.status != 200:
                        raise BadQuery(f"worker {peer} answered {answer.status}", 502)
                    rows += orjson.loads(await answer.read())["items"]
            except (ClientError, TimeoutError) as error:
                # A worker that left is listed until the group rebalances.
                log.warning("Could not gather %s from %s: %r", request.path, peer, error)
                raise BadQuery(f"worker {peer} is unreachable; the group is probably "
                               "rebalancing, try again shortly", 503) from None
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
        _reject_unknown(request, {"pair", "sector", "period", "measure", "format", "as_of"})
        pair, sector, period = _pair_param(request), _sector_param(request), _period_param(request)
        measure, as_of = request.query.get("measure"), _as_of_param(request)
        if pair is not None and (forwarded := await self._to_owner(pair, request)):
            return forwarded
        rows = [row for row in self._local_totals(pair, as_of)
                if (sector is None or row["sector"] == sector)
                and (period is None or row["period"] == period)
                and (measure is None or row["measure"] == measure)]
        if pair is None:
            rows = await self._gather(request, rows)
        rows.sort(key=lambda r: (r["pair"], r["sector"], r["measure"], r["period"]))
        return respond(request, "Totals", {"items": rows, "count": len(rows), "as_of":
                                           _iso(as_of)}, rows)

    def _local_ledgers(self, pair: str | None) -> list[tuple[str, JSON]]:
        """The ledgers this worker owns (a standby copy, or one of a partition that just
        moved, is another worker's to answer for), or the one of ``pair``."""
        return [(key, ledger) for key, ledger in list(self.tables.ledgers.items())
                if ledger is not None and (pair is None or key == pair)
                and self._is_me(self._owner(key))]

    def _local_totals(self, pair: str | None, as_of: date | None) -> list[Row]:
        rows = []
        for key, ledger in self._local_ledgers(pair):
            lines = self.headlines.lines(ledger, as_of)
            for (sector, measure, period), amount in totals({}, lines=lines).items():
                rows.append({"pair": key, "sector": sector, "measure": measure,
                             "period": period, "value": str(amount)})
        return rows

    async def settlement(self, request: web.Request) -> web.Response:
        _reject_unknown(request, {"pair", "period", "format", "as_of"})
        pair, period, as_of = _pair_param(request), _period_param(request), _as_of_param(request)
        if pair is not None and (forwarded := await self._to_owner(pair, request)):
            return forwarded
        rows = []
        for key, ledger in self._local_ledgers(pair):
            lines = self.headlines.lines(ledger, as_of)
            for (label, currency), share in settlement_shares({}, lines=lines).items():
                if period is None or label == period:
                    rows.append({"pair": key, "period": label, "currency": currency,
                                 "share": str(share.quantize(Decimal("0.0001")))})
        if pair is None:
            rows = await self._gather(request, rows)
        rows.sort(key=lambda r: (r["pair"], r["period"], r["currency"]))
        return respond(request, "Settlement currency shares",
                       {"items": rows, "count": len(rows), "as_of": _iso(as_of)}, rows)

    async def commitments(self, request: web.Request) -> web.Response:
        _reject_unknown(request, {"format", "as_of"})
        as_of = _as_of_param(request)
        rows = []
        for commitment in self._commitments().values():
            defined = self._defined(commitment, as_of)
            if defined is not None and self._is_me(self._owner(commitment_pair(defined))):
                rows.append(self._progress_row(defined, as_of))
        rows = await self._gather(request, rows)
        rows.sort(key=lambda r: r["commitment_id"])
        return respond(request, "Commitments", {"items": rows, "count": len(rows),
                                                "as_of": _iso(as_of)}, rows)

    async def commitment(self, request: web.Request) -> web.Response:
        found, as_of = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        row = self._progress_row(found, as_of)
        contributing = []
        for (sector, measure, period), amount in sorted(totals(
                {}, lines=self._lines(found, as_of)).items(), key=lambda kv: kv[0][2]):
            if sector == found["sector"] and measure == found["metric"]:
                contributing.append({"period": period, "value": str(amount)})
        history = self._history_rows(found, as_of)
        payload = {**row, "definition": found, "totals": contributing}
        return respond(request, f"Commitment {found['commitment_id']}", payload, [row],
                       sections=[("Totals by period", contributing)],
                       chart=history_chart(history, found["commitment_id"]))

    async def history(self, request: web.Request) -> web.Response:
        found, as_of = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        rows = self._history_rows(found, as_of)
        title = f"History of {found['commitment_id']}"
        return respond(request, title, {"commitment_id": found["commitment_id"], "items": rows},
                       rows, chart=history_chart(rows, found["commitment_id"]))

    async def explain_commitment(self, request: web.Request) -> web.Response:
        found, as_of = await self._one_commitment(request)
        if isinstance(found, web.Response):
            return found
        measure = VALUE if found["metric"] == SETTLEMENT_SHARE else found["metric"]
        start, last = date.fromisoformat(found["period_start"]), as_of or date.today()
        months = frozenset(months_between(month_label(start), month_label(min(
            last, date.fromisoformat(found["deadline"])))))
        figure = Figure(commitment_pair(found), found["sector"], measure, months, as_of)
        report = await explain(self.settings, figure)
        return self._explained(request, f"Explain {found['commitment_id']}",
                               {"commitment_id": found["commitment_id"], **report})

    async def explain_totals(self, request: web.Request) -> web.Response:
        _reject_unknown(request, {"pair", "sector", "period", "measure", "format", "as_of"})
        pair, sector, period = _pair_param(request), _sector_param(request), _period_param(request)
        if pair is None:
            raise BadQuery("pair is required, e.g. ?pair=IN-RU&sector=trade&period=2024")
        if (forwarded := await self._to_owner(pair, request)):
            return forwarded
        figure = figure_for_period(pair, sector or "all", request.query.get("measure", VALUE),
                                   period, _as_of_param(request))
        return self._explained(request, f"Explain {pair}", await explain(self.settings, figure))

    def _explained(self, request: web.Request, title: str, report: dict[str, Any]) -> web.Response:
        sections = [(name.replace("_", " "), report[name]) for name in
                    ("largest", "hidden_by_mirror_rule", "corrections", "duplicates_ignored",
                     "pending_fx")]
        summary = {k: v for k, v in report.items() if not isinstance(v, list | dict)}
        flat = [{"topic": t, "events": n} for t, n in report["events_by_topic"].items()]
        return respond(request, title, report, [summary],
                       sections=[("events by topic", flat), *[
                           (name, [_flatten(row) for row in rows]) for name, rows in sections]])

    async def _one_commitment(self, request: web.Request
                              ) -> tuple[dict[str, Any] | web.Response, date | None]:
        """The commitment a /commitments/{id}/... request names (as of ``as_of``), or the
        owner's answer when another worker owns its pair."""
        _reject_unknown(request, {"format", "as_of"})
        as_of = _as_of_param(request)
        commitment_id = request.match_info["commitment_id"]
        found = self._commitments().get(commitment_id)
        defined = self._defined(found, as_of) if found is not None else None
        if defined is None:
            when = f" as of {as_of}" if as_of else ""
            raise BadQuery(f"no commitment {commitment_id!r}{when}", 404)
        forwarded = await self._to_owner(commitment_pair(defined), request)
        return forwarded or defined, as_of

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

    def _progress_row(self, commitment: dict[str, Any], as_of: date | None) -> Row:
        day = as_of or date.today()
        return progress(commitment, {}, day, lines=self._lines(commitment, day)).to_json()

    def _history_rows(self, commitment: dict[str, Any], as_of: date | None) -> list[Row]:
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
            snapshot = progress(commitment, {}, day, lines=self._lines(commitment, day)).to_json()
            rows.append({"month": month, "target": snapshot["target"],
                         "achieved": snapshot["achieved"], "ratio": snapshot["ratio"],
                         "status": snapshot["status"]})
        return rows


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400 or error.content_type == "application/json":
            raise
        return error_response(f"{error.reason}: {request.path}", error.status)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _flatten(row: dict[str, Any]) -> dict[str, Any]:
    return {k: orjson.dumps(v).decode() if isinstance(v, list | dict) else v
            for k, v in row.items()}


def _sector_param(request: web.Request) -> str | None:
    sector = request.query.get("sector")
    if sector is not None and sector not in KNOWN_SECTORS:
        raise BadQuery(f"sector {sector!r}: use one of {', '.join(KNOWN_SECTORS)}")
    return sector


def _period_param(request: web.Request) -> str | None:
    period = request.query.get("period")
    if period is not None:
        try:
            months_of(period)
        except ValueError as error:
            raise BadQuery(str(error)) from None
    return period


def _as_of_param(request: web.Request) -> date | None:
    text = request.query.get("as_of")
    if text is None:
        return None
    try:
        if len(text) != 10:
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"as_of {text!r}: use a date such as 2023-03-31") from None


def _pair_param(request: web.Request) -> str | None:
    pair = request.query.get("pair")
    if pair is None:
        return None
    if not PAIR.match(pair):
        raise BadQuery(f"pair {pair!r}: use two country codes such as IN-RU")
    parts = pair.upper().split("-")
    if parts[0] == parts[1]:
        raise BadQuery(f"pair {pair!r}: use two country codes such as IN-RU")
    return "-".join(sorted(parts))


def _reject_unknown(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise BadQuery(f"unknown query parameter(s): {', '.join(unknown)}; "
                       f"allowed: {', '.join(sorted(allowed))}")


