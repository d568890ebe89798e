"""One error hierarchy: the gateway answers each error with its status from one table, and
the command-line client raises the same class with the same message from the answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cli.client import checked
from pipeline import errors
from pipeline.errors import (
    HTTP_STATUS,
    ApiError,
    BadRequest,
    NotFound,
    QueueFull,
    Unauthorized,
    Unavailable,
    UnsupportedMedia,
    error_for,
)
from tests.support.gateway import submit

REPO = Path(__file__).resolve().parents[2]


def test_every_error_class_has_its_own_status() -> None:
    assert set(ApiError.__subclasses__()) <= set(HTTP_STATUS)
    assert len(set(HTTP_STATUS.values())) == len(HTTP_STATUS)
    for cls, status in HTTP_STATUS.items():
        error = error_for(status, "what to do")
        assert type(error) is cls and error.status == status == cls("m").status
        assert str(error) == error.message == "what to do"


def test_a_status_without_a_class_keeps_its_number() -> None:
    error = error_for(502, "<html>Bad Gateway</html>")
    assert type(error) is ApiError and error.status == 502


def test_errors_carry_their_headers() -> None:
    full = QueueFull(4, 4)
    assert isinstance(full, Unavailable) and full.status == 503
    assert full.headers() == {"Retry-After": str(errors.RETRY_AFTER_SECONDS)}
    assert str(full) == (f"4 jobs are waiting to be processed (limit 4); try again in "
                         f"{errors.RETRY_AFTER_SECONDS} seconds")
    assert Unauthorized("m").headers() == {"WWW-Authenticate": "Bearer"}
    assert BadRequest("m").headers() == {}


def test_gateway_code_raises_only_the_hierarchy() -> None:
    """Statuses come from the table: no handler raises Litestar's exceptions itself."""
    for path in (REPO / "gateway").glob("*.py"):
        if path.name not in ("errors.py", "app.py"):
            assert "HTTPException" not in path.read_text(), path.name


async def test_the_client_raises_what_the_gateway_raised(client: httpx.AsyncClient) -> None:
    answers: list[tuple[httpx.Response, type[ApiError], int]] = [
        (await client.get("/jobs/" + "0" * 32), NotFound, 404),
        (await submit(client, language="en", colour="red"), BadRequest, 400),
        (await client.post("/jobs", content=b"raw", headers={"content-type": "audio/wav"}),
         UnsupportedMedia, 415),
        (await client.get("/no/such/endpoint"), NotFound, 404),  # Litestar's own, reworded
        (await client.put("/jobs"), ApiError, 405),
    ]
    for response, cls, status in answers:
        assert response.status_code == status
        with pytest.raises(ApiError) as raised:
            checked(response)
        assert type(raised.value) is cls and raised.value.status == status
        assert raised.value.message == response.json()["error"]["message"]


def test_a_foreign_error_page_keeps_its_text() -> None:
    page = httpx.Response(502, text="<html>Bad Gateway</html>")
    with pytest.raises(ApiError) as raised:
        checked(page)
    assert raised.value.status == 502 and raised.value.message == "<html>Bad Gateway</html>"
