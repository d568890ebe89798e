"""The API docs: served whole from the gateway, with the upload forms and every answer
described as it really is."""

from __future__ import annotations

import re
from typing import Any

import httpx
import msgspec

from stages.options import JobOptions
from stages.settings import Settings
from tests.support.gateway import serve


async def _schema(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def _form(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    body = schema["paths"][path][method]["requestBody"]["content"]["multipart/form-data"]
    fields: dict[str, Any] = body["schema"]["properties"]
    return fields


async def test_the_upload_forms_name_every_field(client: httpx.AsyncClient) -> None:
    schema = await _schema(client)
    for path in ("/jobs", "/transcribe"):
        fields = _form(schema, "post", path)
        assert fields["file"] == {**fields["file"], "type": "string", "format": "binary"}
        assert set(fields) == {"file", "url", *JobOptions.__struct_fields__}, path
        assert fields["task"]["enum"] == ["transcribe", "translate"]
        assert (fields["num_speakers"]["minimum"], fields["num_speakers"]["maximum"]) == (1, 64)
        assert fields["diarize"] == {**fields["diarize"], "type": "boolean", "default": True}
        assert all(f["description"] for f in fields.values())
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations"):
        fields = _form(schema, "post", path)
        assert fields["file"]["format"] == "binary"
        assert "diarized_json" in fields["response_format"]["enum"]


async def test_every_error_is_documented_in_its_real_shape(client: httpx.AsyncClient) -> None:
    schema = await _schema(client)
    checked = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            shape = "Error" if path.startswith("/v1/") else "ErrorBody"
            answers = operation["responses"]
            assert {"401", "503"} <= set(answers) or path == "/health", (method, path)
            for status, answer in answers.items():
                if int(status) < 400 or path == "/health":
                    continue
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == f"#/components/schemas/{shape}", (method, path, status)
                checked += 1
    assert checked > 50
    assert set(schema["paths"]["/jobs/{job_id}/audio"]["get"]["responses"]) >= {
        "200", "206", "404", "416"}
    assert set(schema["paths"]["/transcribe"]["post"]["responses"]) >= {"200", "202", "413"}


async def test_the_docs_and_the_page_need_no_other_host(settings: Settings) -> None:
    # With API keys: the page and its assets are public (they hold no data); the schema not.
    async with serve(msgspec.structs.replace(settings, api_keys="key-one")) as client:
        page = await client.get("/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        docs = await client.get("/schema", headers={"Authorization": "Bearer key-one"})
        assert docs.status_code == 200
        for html in (page.text, docs.text):
            linked = re.findall(r"""(?:src|href)=["']([^"']+)""", html)
            assert linked and all(url.startswith("/") or url.startswith("data:")
                                  for url in linked), linked
            for url in linked:
                if url.startswith("/") and not url.startswith("/schema"):
                    assert (await client.get(url)).status_code == 200, url
        for old, new in (("/docs", "/schema"), ("/redoc", "/schema"),
                         ("/openapi.json", "/schema/openapi.json")):
            moved = await client.get(old)
            assert moved.is_redirect and moved.headers["location"] == new, old
        assert (await client.get("/static/app.js")).headers["content-type"].startswith(
            "text/javascript")
        assert (await client.get("/static/../pyproject.toml")).status_code == 404
