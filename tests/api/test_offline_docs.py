"""The API's documentation pages work on a network cut off from the internet.

``/docs`` rendered a blank page there: it loaded Swagger UI from a CDN (and
``/redoc`` ReDoc from one, its fonts from Google). Now each page names only
URLs of this server, each of those answers, and the page's policy lets the
browser load nothing from another host."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Api

PAGES = {"/docs": "SwaggerUIBundle", "/redoc": "Redoc"}
"""Each page, and a name its script defines (the page is blank without it)."""
MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
ALLOWED_SOURCES = {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}
"""Sources a policy may name that are no other host."""


class _Page(HTMLParser):
    """The URLs a page makes the browser load and the inline scripts it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]
        self._in_inline_script = tag == "script" and not attributes.get("src")

    def handle_endtag(self, tag: str) -> None:
        self._in_inline_script = False

    def handle_data(self, data: str) -> None:
        if self._in_inline_script:
            self.inline_scripts.append(data)
            self.urls += re.findall(r"url: '([^']*)'", data)  # the document Swagger UI reads


def _page(api: Api, path: str) -> tuple[httpx.Response, _Page]:
    response = api.client.get(path)  # no key: the docs are public
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(response.text)
    return response, page


@pytest.mark.parametrize("path", PAGES)
def test_a_docs_page_names_no_other_host(api: Api, path: str):
    response, page = _page(api, path)
    assert page.urls
    for url in page.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    assert not re.search(r"(https?:)?//[\w.-]+", response.text), "a URL of another host (a CDN, Google fonts)"


@pytest.mark.parametrize("path", PAGES)
def test_everything_a_docs_page_loads_answers_from_this_server(api: Api, path: str):
    _response, page = _page(api, path)
    loaded = {}
    for url in page.urls:
        response = api.client.get(url)
        assert response.status_code == 200, url
        suffix = "." + url.rsplit(".", 1)[-1]
        assert response.headers["content-type"].split(";")[0] == MEDIA_TYPES[suffix], url
        loaded[url] = response
    scripts = [response.text for url, response in loaded.items() if url.endswith(".js")]
    assert any(PAGES[path] in script for script in scripts)
    assert {".js", ".json", ".png"} <= {"." + url.rsplit(".", 1)[-1] for url in loaded}


@pytest.mark.parametrize("path", PAGES)
def test_a_docs_page_lets_the_browser_load_nothing_from_another_host_and_runs_its_own_script(api: Api, path: str):
    response, page = _page(api, path)
    directives = {
        name: sources
        for name, *sources in (part.split() for part in response.headers["content-security-policy"].split(";"))
    }
    assert directives["default-src"] == ["'self'"] and directives["frame-ancestors"] == ["'none'"]
    for name, sources in directives.items():
        for source in sources:
            assert source in ALLOWED_SOURCES or source.startswith("'sha256-"), (name, source)
    for script in page.inline_scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in directives["script-src"]


def test_the_assets_need_no_key_and_a_missing_one_is_a_problem_not_a_page(api: Api):
    assert api.client.get("/docs/assets/swagger-ui.css").status_code == 200
    missing = api.client.get("/docs/assets/no-such-file.js")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
