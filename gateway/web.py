"""The web page at / and the API docs at /schema, with every asset served from here: the
service is often run where browsers cannot reach a CDN."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from litestar import Router, get
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.response import File, Redirect
from litestar.static_files import create_static_files_router

from gateway.auth import PUBLIC

STATIC = Path(__file__).parent / "static"
#: Where the page's own files are served.
STATIC_PATH = "/static"
#: Where Swagger UI's files (from the swagger-ui-py package) are served.
SWAGGER_PATH = "/assets/swagger-ui"


def swagger_dir() -> Path:
    # Located, not imported: the package's own module imports Jinja and web frameworks'
    # handlers, of which only the static files are needed.
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed: pip install -r "
                           "requirements/gateway.txt")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def swagger_plugin() -> SwaggerRenderPlugin:
    """Swagger UI at /schema (and /schema/swagger), loading nothing from another host."""
    return SwaggerRenderPlugin(
        path=["/", "/swagger"],
        js_url=f"{SWAGGER_PATH}/swagger-ui-bundle.js",
        css_url=f"{SWAGGER_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{SWAGGER_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_PATH}/favicon-32x32.png'>")


@get("/", include_in_schema=False, opt={PUBLIC: True})
async def page() -> File:
    # The page holds no data: it asks for the key itself, when the API answers 401.
    return File(STATIC / "index.html", media_type="text/html", content_disposition_type="inline")


@get(["/docs", "/redoc"], include_in_schema=False, opt={PUBLIC: True})
async def docs_redirect() -> Redirect:
    """Where the original FastAPI service had its docs."""
    return Redirect("/schema")


@get("/openapi.json", include_in_schema=False, opt={PUBLIC: True})
async def schema_redirect() -> Redirect:
    return Redirect("/schema/openapi.json")


def web_router() -> Router:
    return Router(path="/", route_handlers=[
        page, docs_redirect, schema_redirect,
        create_static_files_router(STATIC_PATH, [STATIC], name="static", opt={PUBLIC: True}),
        create_static_files_router(SWAGGER_PATH, [swagger_dir()], name="swagger-ui",
                                   opt={PUBLIC: True}),
    ])
