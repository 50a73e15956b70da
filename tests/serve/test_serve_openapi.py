"""The OpenAPI schema is valid, and a schema-driven fuzz finds no 5xx and no undeclared answer."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import positive_data_acceptance  # noqa: E402

from tests.serve.support import running  # noqa: E402
from vigil.models.spec import TASKS, Task  # noqa: E402
from vigil.serve import ServeSettings, create_app  # noqa: E402
from vigil.tasks.fake import FakeModel  # noqa: E402


@pytest.fixture(scope="module")
def schema(classifier_service: Any) -> dict[str, Any]:
    response = classifier_service.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_schema_is_valid_openapi(schema: dict[str, Any]) -> None:
    openapi_spec_validator.validate(schema)
    assert schema["openapi"].startswith("3.")


def test_predict_documents_its_three_body_forms_and_its_errors(schema: dict[str, Any]) -> None:
    predict = schema["paths"]["/predict"]["post"]
    content = predict["requestBody"]["content"]
    assert {
        "image/jpeg",
        "application/octet-stream",
        "multipart/form-data",
        "application/json",
    } <= set(content)
    assert content["multipart/form-data"]["schema"]["required"] == ["image"]
    assert content["application/json"]["schema"]["required"] == ["image"]
    assert {"200", "400", "413", "415", "422", "500"} <= set(predict["responses"])
    ok = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/PredictResponse"}
    error = predict["responses"]["413"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorResponse"}


def test_every_endpoint_has_a_typed_answer(schema: dict[str, Any]) -> None:
    operations = {path: next(iter(item.values())) for path, item in schema["paths"].items()}
    assert {path: op["operationId"] for path, op in operations.items()} == {
        "/predict": "predict",
        "/health": "health",
        "/metadata": "metadata",
        "/metrics": "metrics",
    }
    for path in ("/health", "/metadata"):
        answer = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert answer["schema"]["$ref"].startswith("#/components/schemas/")
    results = schema["components"]["schemas"]["PredictResponse"]["properties"]["results"]
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in results["oneOf"]} == {
        "ClassifyResults",
        "DetectResults",
        "PoseResults",
        "EmbedResults",
    }


@pytest.mark.parametrize("task", TASKS)
def test_real_answers_match_the_schema(task: Task) -> None:
    """Every task's /predict answer validates against the response model the schema names."""
    from tests.serve.support import encode, scene
    from vigil.serve.schema import PredictResponse

    with running(create_app(FakeModel(task))) as service:
        response = service.client.post(
            "/predict", content=encode(scene()), headers={"content-type": "image/jpeg"}
        )
    parsed = PredictResponse.model_validate(response.json())
    assert parsed.results.task == task
    assert parsed.model_dump(by_alias=True)["results"] == response.json()["results"]


ALL_PATHS = {"/predict", "/health", "/metadata", "/metrics"}


def fuzz_cases(mode: GenerationMode, paths: set[str]) -> list[Any]:
    """One case strategy for each operation on ``paths``, in one generation mode."""
    app = create_app(FakeModel("detect"), ServeSettings(max_body_mb=1, warmup=False))
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in api.get_all_operations()]
    assert {operation.path for operation in operations} == ALL_PATHS
    chosen = [operation for operation in operations if operation.path in paths]
    return [operation.as_strategy(generation_mode=mode) for operation in chosen]


@pytest.mark.parametrize(
    ("mode", "paths"),
    [
        (GenerationMode.POSITIVE, ALL_PATHS),
        (GenerationMode.NEGATIVE, {"/predict"}),  # the others take no input to get wrong
    ],
)
def test_a_schema_driven_fuzz_finds_no_server_error(mode: GenerationMode, paths: set[str]) -> None:
    """Every answer is declared and matches its schema, and none is a 5xx.

    Schema-valid bodies that are no image (random bytes) are rightly refused, so the check
    that schema-valid requests be accepted is left out.
    """
    for strategy in fuzz_cases(mode, paths):

        @given(strategy)
        @settings(
            max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def check(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, response.text
            case.validate_response(response, excluded_checks=[positive_data_acceptance])

        check()
