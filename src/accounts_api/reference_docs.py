"""The reference docs (issue 8): `GET /api/rest/admin/docs`, Swagger UI rendering the served
OpenAPI document, without authentication and without any outside service.

Swagger UI comes from the PyPI package `swagger-ui-bundle-v2` (its release files, as published
by the Swagger UI project, Apache-2.0), served from the installed package under
`/api/rest/admin/docs/assets/`: nothing is fetched from a CDN, and the page works offline.
Each asset's name carries a digest of its bytes, so it can be cached for a year and a new
release of the package is fetched at once; the page itself is cached as the document is.

The page runs no inline script and has no inline style (its configuration is an asset too),
so its Content-Security-Policy allows scripts and styles from the service alone; Swagger UI's
stylesheet draws some icons as `data:` SVG images, which it allows as well.
"""

from __future__ import annotations

import functools
import hashlib
import html
import posixpath
from dataclasses import dataclass
from pathlib import PurePosixPath

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# the package ships no py.typed; swagger_ui_path is the release's folder, a Traversable
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from accounts_api.jsonapi.document import API_PREFIX

PATH = f"{API_PREFIX}/docs"
ASSETS_PATH = f"{PATH}/assets"
CONTENT_TYPE = "text/html; charset=utf-8"
# the page names the assets of this deployment: cached like the OpenAPI document
CACHE_CONTROL = "public, max-age=300"
# an asset's name changes with its bytes (RFC 8246)
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # React sets style properties through the CSSOM, which the policy does not restrict
        "style-src 'self'",
        "img-src 'self' data:",
        # the document, and "Try it out" against this same service
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'self'",
    )
)

_CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
# of the release's files, those the page uses: the bundle carries the whole UI
_RELEASE_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

# Swagger UI's configuration, where the page's markup leaves it. `validatorUrl: null`: by
# default Swagger UI sends the document to a validator on the internet for a badge.
_CONFIGURATION = b"""\
"use strict";
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: new URL(root.dataset.openapi, document.baseURI).href,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    docExpansion: "list",
    validatorUrl: null,
  });
});
"""


@dataclass(frozen=True)
class Asset:
    name: str
    body: bytes
    content_type: str


def _asset(file_name: str, body: bytes) -> Asset:
    path = PurePosixPath(file_name)
    digest = hashlib.sha256(body).hexdigest()[:16]
    return Asset(f"{path.stem}.{digest}{path.suffix}", body, _CONTENT_TYPES[path.suffix])


@functools.cache
def assets() -> dict[str, Asset]:
    """What the page loads, by the original file name; read from the package once."""
    found = {name: _asset(name, (swagger_ui_path / name).read_bytes()) for name in _RELEASE_FILES}
    found["configuration.js"] = _asset("configuration.js", _CONFIGURATION)
    return found


def asset_names() -> list[str]:
    """The names the assets are served under."""
    return sorted(asset.name for asset in assets().values())


def _relative(path: str) -> str:
    """`path` as the page refers to it: relative, so that the page works under any prefix a
    proxy adds."""
    return html.escape(posixpath.relpath(path, posixpath.dirname(PATH)))


def _page(openapi_path: str) -> bytes:
    found = assets()

    def asset(name: str) -> str:
        return _relative(f"{ASSETS_PATH}/{found[name].name}")

    return f"""\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>accounts-api reference</title>
<link rel="stylesheet" href="{asset("swagger-ui.css")}">
<link rel="icon" type="image/png" href="{asset("favicon-32x32.png")}">
</head>
<body>
<div id="swagger-ui" data-openapi="{_relative(openapi_path)}"></div>
<script src="{asset("swagger-ui-bundle.js")}"></script>
<script src="{asset("configuration.js")}"></script>
</body>
</html>
""".encode()


def routes(openapi_path: str) -> list[Route]:
    """The page, rendering the document served at `openapi_path`, and its assets. No
    authentication: like the document, the page tells how to authenticate."""
    page = _page(openapi_path)
    by_name = {asset.name: asset for asset in assets().values()}

    async def docs(request: Request) -> Response:
        return Response(
            page,
            media_type=CONTENT_TYPE,
            headers={
                "cache-control": CACHE_CONTROL,
                "content-security-policy": CONTENT_SECURITY_POLICY,
            },
        )

    async def asset(request: Request) -> Response:
        found = by_name.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        return Response(
            found.body,
            media_type=found.content_type,
            headers={"cache-control": ASSET_CACHE_CONTROL},
        )

    return [
        Route(PATH, docs, methods=["GET"]),
        Route(f"{ASSETS_PATH}/{{name}}", asset, methods=["GET"]),
    ]
