"""/openapi.json on a live worker folding the sample: the document is valid OpenAPI 3.1
(openapi-spec-validator), and every documented example, sent to the worker, gets the
documented status and a body its schema accepts - with no undocumented field - and, where
the document gives the answer, exactly that answer."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from services.tracker.broker import EmbeddedKafka
from tests.integration.conftest import Worker, start_with_sample
from tests.integration.independent_fold import Expected
from tests.integration.reliability import own_deployment

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def worker(kafka: EmbeddedKafka, tmp_path_factory: pytest.TempPathFactory,
           expected: Expected) -> Iterator[Worker]:
    running = start_with_sample(own_deployment(kafka, tmp_path_factory.mktemp("openapi")),
                                expected)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def document(worker: Worker) -> dict[str, Any]:
    answer = worker.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def closed(document: dict[str, Any]) -> dict[str, Any]:
    """The component schemas with every object that lists its properties closed, so a field
    the worker sends but the document does not name fails validation."""
    components = copy.deepcopy(document["components"])
    for schema in components["schemas"].values():
        if "properties" in schema:
            schema["additionalProperties"] = False
    return components


def examples(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, example name, {"params", "status", "body"?}) for every documented example."""
    for path, item in document["paths"].items():
        operation = item["get"]
        found: dict[str, dict[str, Any]] = {}
        for parameter in operation["parameters"]:
            for name, example in parameter.get("examples", {}).items():
                found.setdefault(name, {"params": {}, "status": 200})
                found[name]["params"][(parameter["in"], parameter["name"])] = example["value"]
        for status, response in operation["responses"].items():
            for media in response.get("content", {}).values():
                for name, example in media.get("examples", {}).items():
                    found.setdefault(name, {"params": {}})["status"] = int(status)
                    if "value" in example:
                        found[name]["body"] = example["value"]
        assert found, f"{path} has no example"
        for name, example in found.items():
            yield path, name, example


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_example_is_what_the_worker_answers(worker: Worker,
                                                  document: dict[str, Any]) -> None:
    components = closed(document)
    checked = 0
    for path, name, example in examples(document):
        url = path
        query = {}
        for (where, key), value in example["params"].items():
            if where == "path":
                url = url.replace(f"{{{key}}}", value)
            else:
                query[key] = value
        answer = worker.get(url, params=query)
        assert answer.status_code == example["status"], (path, name, answer.text[:300])
        documented = document["paths"][path]["get"]["responses"][str(example["status"])]
        media = answer.headers["content-type"].split(";")[0]
        assert media in documented["content"], (path, name, media)
        schema = documented["content"][media]["schema"]
        if media == "application/json":
            body = answer.json()
            Draft202012Validator({**schema, "components": components},
                                 format_checker=Draft202012Validator.FORMAT_CHECKER
                                 ).validate(body)
            if "body" in example:
                assert body == example["body"], (path, name)
        checked += 1
    assert checked >= 14


def test_every_negotiated_view_serves_what_it_documents(worker: Worker,
                                                        document: dict[str, Any]) -> None:
    for path, name, example in examples(document):
        if example["status"] != 200:
            continue
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        url = path
        query = {}
        for (where, key), value in example["params"].items():
            if where == "path":
                url = url.replace(f"{{{key}}}", value)
            else:
                query[key] = value
        for media in content:
            answer = worker.get(url, params=query, headers={"Accept": media})
            assert answer.status_code == 200, (path, name, media)
            assert answer.headers["content-type"].split(";")[0] == media, (path, name)
