"""GET /api/rest/admin/docs (issue 8): Swagger UI from a package, rendering the served OpenAPI
document with nothing from outside the service."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from starlette.testclient import TestClient
from swagger_ui_bundle import swagger_ui_path

from accounts_api import reference_docs

DOCS = "/api/rest/admin/docs"
OPENAPI = "/api/rest/admin/openapi.json"
_LINKED = re.compile(r'(?:href|src)="([^"]+)"')
_URL = re.compile(r"https?://", re.IGNORECASE)


def linked(page: str) -> list[str]:
    """The files the page loads, as absolute paths."""
    return [urlsplit(urljoin(f"http://host{DOCS}", link)).path for link in _LINKED.findall(page)]


# --- over HTTP ----------------------------------------------------------------------------


def test_the_page_is_served_without_a_token(app_client: TestClient) -> None:
    response = app_client.get(DOCS)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-security-policy"] == reference_docs.CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "SAMEORIGIN"
    assert response.headers["x-content-type-options"] == "nosniff"
    again = app_client.get(DOCS, headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304


def test_the_page_and_its_configuration_name_no_other_host(app_client: TestClient) -> None:
    page = app_client.get(DOCS).text
    configuration = [path for path in linked(page) if "/configuration." in path]
    assert len(configuration) == 1
    script = app_client.get(configuration[0]).text

    assert "SwaggerUIBundle(" in script
    assert "validatorUrl: null" in script
    for text in (page, script):
        assert not _URL.search(text), text
        assert "//" not in re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)
    # the document the page renders, relative to the page
    assert urljoin(f"http://host{DOCS}", "openapi.json") == f"http://host{OPENAPI}"
    assert 'data-openapi="openapi.json"' in page


def test_every_file_the_page_loads_is_served_from_the_package(app_client: TestClient) -> None:
    page = app_client.get(DOCS).text
    paths = linked(page)
    release = {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"}
    served = set()
    for path in paths:
        assert path.startswith(f"{DOCS}/assets/"), path
        response = app_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        stem, digest, suffix = path.rsplit("/", 1)[1].split(".")
        assert len(digest) == 16
        expected_type = {
            "js": "text/javascript; charset=utf-8",
            "css": "text/css; charset=utf-8",
            "png": "image/png",
        }[suffix]
        assert response.headers["content-type"] == expected_type, path
        name = f"{stem}.{suffix}"
        if name in release:
            assert response.content == (swagger_ui_path / name).read_bytes(), name
        served.add(name)
    assert served == release | {"configuration.js"}
    # and the document describes exactly these names
    document = app_client.get(OPENAPI).json()
    (parameter,) = document["paths"][f"{DOCS}/assets/{{name}}"]["get"]["parameters"]
    assert sorted(parameter["schema"]["enum"]) == sorted(p.rsplit("/", 1)[1] for p in paths)


def test_an_asset_of_another_release_is_not_found(app_client: TestClient) -> None:
    for name in ("swagger-ui-bundle.js", "swagger-ui-bundle.0000000000000000.js", "..%2Fapp.py"):
        response = app_client.get(f"{DOCS}/assets/{name}")
        assert response.status_code == 404, name
        assert response.json()["errors"][0]["status"] == "404"
