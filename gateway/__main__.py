"""``python -m gateway``: serve the HTTP API on HOST:PORT."""

from __future__ import annotations

import sys

import uvicorn

from gateway import compat as gateway_compat
from gateway.app import create_app
from gateway.logs import quiet_routine_requests
from pipeline import compat
from pipeline.errors import ConfigError
from pipeline.logs import setup_logging
from stages.settings import Settings


def main() -> None:
    try:
        settings = Settings.from_env()
        compat.check_embedded_server(settings)
        compat.check(gateway_compat.PATCHES)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    setup_logging(settings.log_level, settings.log_format)
    quiet_routine_requests()
    # log_config=None: uvicorn's lines go through the one handler setup_logging installed
    # (with the time, and in LOG_FORMAT), not through uvicorn's own formatters.
    # limit_concurrency counts the connection of the request it checks: one more lets
    # MAX_CONNECTIONS connections be served (a request on one beyond them gets 503).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port,
                log_level=settings.log_level.lower(), proxy_headers=True, log_config=None,
                http=gateway_compat.header_deadline(settings.header_timeout_seconds),
                timeout_keep_alive=settings.keep_alive_timeout_seconds,
                limit_concurrency=settings.max_connections + 1)


if __name__ == "__main__":
    main()
