"""The OpenAPI 3.1 document, built from the query and response models. ``OPERATIONS`` is
also the list of routes the worker serves (``views`` registers exactly these), so a
view cannot go undocumented. Each operation carries examples: requests on the sample data
(``make run``) with, where short enough to read, the exact answer - a test sends every one
to a live worker and compares."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.tracker.api import models
from services.tracker.api.figures import SCALE
from services.tracker.api.negotiation import MEDIA_TYPES
from services.tracker.api.params import (
    CommitmentQuery,
    CommitmentsQuery,
    ExplainTotalsQuery,
    SettlementQuery,
    TotalsQuery,
    ViewQuery,
)

REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Example:
    name: str
    summary: str
    params: dict[str, str]  # path and query parameters
    status: int = 200
    body: Any = None  # the exact JSON answer on the sample data, when given


@dataclass(frozen=True)
class Operation:
    path: str
    name: str  # the operationId, and the method of views.Views answering it
    summary: str
    body: type[BaseModel] | None  # None: not JSON (Prometheus' text exposition)
    query: type[ViewQuery] | None = None
    negotiated: bool = True  # JSON, HTML or CSV
    errors: tuple[int, ...] = (400, 406, 503)
    examples: tuple[Example, ...] = field(default=())

    @property
    def path_params(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]


def _error(message: str, status: int) -> dict[str, Any]:
    return {"error": message, "status": status}


OPERATIONS: tuple[Operation, ...] = (
    Operation("/health/", "health", "Readiness: 200 once the tables are recovered, else 503.",
              models.Health, negotiated=False, errors=(), examples=(
                  Example("ready", "A worker that has recovered its tables", {}, body={
                      "status": "ready", "worker": "worker-1", "tables_recovered": True,
                      "rebalancing": False}),)),
    Operation("/metrics", "prometheus", "Prometheus text exposition (not negotiated).", None,
              negotiated=False, errors=(), examples=(Example("all", "Every series", {}),)),
    Operation("/openapi.json", "openapi", "This document.", None, negotiated=False,
              errors=(), examples=(Example("document", "The document", {}),)),
    Operation("/totals/", "totals", "Running totals by pair, sector, measure and period.",
              models.Totals, TotalsQuery, examples=(
                  Example("fiscal-year", "India-Russia trade in FY2024-25 (pairs are unordered)",
                          {"pair": "RU-IN", "sector": "all", "measure": "value_usd",
                           "period": "FY2024-25"}, body={
                              "items": [{"pair": "IN-RU", "sector": "all",
                                         "measure": "value_usd", "period": "FY2024-25",
                                         "value": "68700000000.0000"}],
                              "count": 1, "as_of": None, "next": None}),
                  Example("as-of", "Crude oil imported in FY2023-24, as known then",
                          {"pair": "IN-RU", "sector": "energy", "measure": "bbl",
                           "period": "FY2023-24", "as_of": "2024-03-31"}, body={
                              "items": [{"pair": "IN-RU", "sector": "energy", "measure": "bbl",
                                         "period": "FY2023-24", "value": "650000000.0000"}],
                              "count": 1, "as_of": "2024-03-31", "next": None}),
                  Example("page", "Two rows a page: follow next for the rest",
                          {"pair": "IN-RU", "sector": "trade", "limit": "2"}),
                  Example("bad-period", "A fiscal year whose years do not follow",
                          {"period": "FY2024-26"}, 400, _error(
                              "period: fiscal year 'FY2024-26': the second year must follow "
                              "the first", 400)))),
    Operation("/totals/explain/", "explain_totals", "The events behind one total.",
              models.Explanation, ExplainTotalsQuery, examples=(
                  Example("trade", "India-Russia trade in FY2022-23",
                          {"pair": "IN-RU", "sector": "trade", "period": "FY2022-23"}),
                  Example("no-pair", "The pair is required", {"sector": "trade"}, 400,
                          _error("pair: required", 400)))),
    Operation("/settlement/", "settlement", "Share of each settlement currency.",
              models.Shares, SettlementQuery, examples=(
                  Example("fiscal-year", "India-Russia settlement in FY2024-25",
                          {"pair": "IN-RU", "period": "FY2024-25"}, body={
                              "items": [
                                  {"pair": "IN-RU", "period": "FY2024-25", "currency": currency,
                                   "share": share} for currency, share in (
                                      ("AED", "0.1156"), ("CNY", "0.0136"), ("INR", "0.0147"),
                                      ("RUB", "0.0376"), ("USD", "0.8184"))],
                              "count": 5, "as_of": None, "next": None}),)),
    Operation("/commitments/", "commitments", "Every commitment with its progress.",
              models.Commitments, CommitmentsQuery, examples=(
                  Example("as-of", "As the tracker would have answered on 2022-03-31",
                          {"as_of": "2022-03-31"}),)),
    Operation("/commitments/{commitment_id}/", "commitment",
              "One commitment, its progress and its totals by period.", models.Commitment,
              CommitmentQuery, errors=(400, 404, 406, 503), examples=(
                  Example("as-of", "The USD 30 bn goal at the end of FY2022-23",
                          {"commitment_id": "in-ru-30bn-2025", "as_of": "2023-03-31"}),
                  Example("unknown", "No such commitment", {"commitment_id": "nope"}, 404,
                          _error("no commitment 'nope'", 404)))),
    Operation("/commitments/{commitment_id}/history/", "history",
              "Progress at the end of each month.", models.History, CommitmentQuery,
              errors=(400, 404, 406, 503), examples=(
                  Example("summit", "The USD 100 bn goal since its declaration",
                          {"commitment_id": "in-ru-100bn-2030"}),)),
    Operation("/commitments/{commitment_id}/explain/", "explain_commitment",
              "The events behind a commitment's figure.", models.CommitmentExplanation,
              CommitmentQuery, errors=(400, 404, 406, 503), examples=(
                  Example("defense", "Deliveries under the 2018 defense contracts",
                          {"commitment_id": "in-ru-defense-2018-contracts"}),)),
)


@functools.cache
def document() -> dict[str, Any]:
    bodies = [op.body for op in OPERATIONS if op.body is not None] + [models.Error]
    _, top = models_json_schema([(body, "serialization") for body in bodies],
                                ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Commitment tracker", "version": "1",
                 "description": (
                     "Bilateral trade, energy and defense commitments folded from Kafka. "
                     "Every decimal figure (amounts, quantities, ratios, shares) is a string "
                     f"with exactly {SCALE} decimal places, rounded half to even. JSON by "
                     "default; text/html and text/csv by Accept (q-values weighed) or "
                     "?format=. Errors are JSON: {\"error\", \"status\"}.")},
        "paths": {op.path: {"get": _operation(op)} for op in OPERATIONS},
        "components": {"schemas": top["$defs"]},
    }


def _operation(op: Operation) -> dict[str, Any]:
    parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                  for name in op.path_params]
    if op.query is not None:
        schema = op.query.model_json_schema(mode="validation")
        parameters += [_query_parameter(name, prop, name in schema.get("required", ()))
                       for name, prop in schema["properties"].items()]
    for parameter in parameters:
        named = {example.name: {"value": example.params[parameter["name"]]}
                 for example in op.examples if parameter["name"] in example.params}
        if named:
            parameter["examples"] = named
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _content(op)}}
    if op.negotiated:
        parameters.append({"name": "If-None-Match", "in": "header", "required": False,
                           "description": "An ETag of an earlier answer: 304 if still current.",
                           "schema": {"type": "string"}})
        responses["200"]["headers"] = {"ETag": _ETAG, "Vary": {"schema": {"type": "string"}}}
        responses["304"] = {"description": "Not modified: the If-None-Match tag is current",
                            "headers": {"ETag": _ETAG}}
    if op.name == "health":
        responses["503"] = {"description": "Recovering or rebalancing",
                            "content": {"application/json": {"schema": _ref(models.Health)}}}
    for status in op.errors:
        responses[str(status)] = {"description": _REASONS[status], "content": {
            "application/json": {"schema": _ref(models.Error)}}}
    for example in op.examples:
        # Listed under the response it gets (its first media type), with the answer itself
        # when the example gives it.
        media = next(iter(responses[str(example.status)]["content"].values()))
        documented = {"summary": example.summary}
        if example.body is not None:
            documented["value"] = example.body
        media.setdefault("examples", {})[example.name] = documented
    return {"operationId": op.name, "summary": op.summary, "parameters": parameters,
            "responses": responses}


_ETAG = {"description": "Digest of the view, query, representation and the log positions of "
                        "the table values the answer reflects.",
         "schema": {"type": "string"}}
_REASONS = {400: "A bad query; the message names the parameter",
            404: "No such commitment (as of that day)",
            406: "None of the representations the Accept header allows",
            503: "Partitions are being assigned, or a worker is unreachable"}


def _content(op: Operation) -> dict[str, Any]:
    if op.name == "prometheus":
        return {"text/plain": {"schema": {"type": "string"}}}
    if op.body is None:
        return {"application/json": {"schema": {"type": "object"}}}
    content: dict[str, Any] = {"application/json": {"schema": _ref(op.body)}}
    if op.negotiated:
        content |= {MEDIA_TYPES["html"]: {"schema": {"type": "string"}},
                    MEDIA_TYPES["csv"]: {"schema": {"type": "string"}}}
    return content


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _query_parameter(name: str, prop: dict[str, Any], required: bool) -> dict[str, Any]:
    """A query parameter is absent or a string: the model's ``X | None`` is not ``null``."""
    schema = dict(prop)
    options = [option for option in schema.pop("anyOf", ()) if option != {"type": "null"}]
    if options:
        schema |= options[0]
    if schema.get("default") is None:
        schema.pop("default", None)
    description = schema.pop("description", None)
    schema.pop("title", None)
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter
