"""``python -m benchmark.hello``: the baseline server of part ``gateway``, a bare Litestar
app served exactly as ``python -m gateway`` serves the real one (uvicorn, HOST/PORT,
warning log level, proxy headers)."""

from __future__ import annotations

import os
from typing import Any

import uvicorn
from litestar import Litestar, Request, get, post


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@post("/upload", status_code=202)
async def upload(request: Request[Any, Any, Any]) -> dict[str, int]:
    # Reads the whole upload, as POST /jobs must, but neither parses nor stores it.
    return {"bytes": len(await request.body())}


def main() -> None:
    app = Litestar(route_handlers=[hello, upload], debug=False)
    uvicorn.run(app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ["PORT"]),
                log_level="warning", proxy_headers=True)


if __name__ == "__main__":
    main()
