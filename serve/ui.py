"""The inspection page: `GET /` and `/ui` serve a static page that calls `/v1/models` and `/v1/articles` like
any client (one code path), plus `/ui/config`, the few server settings the page needs before its first call.

The page is plain HTML/CSS/JS shipped as package data (serve/static/); nothing is built or fetched from elsewhere.
Its Content-Security-Policy allows only this origin's script, style and fetches: model and user text is put on
the page with textContent, and the policy is the second wall should that ever slip.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

STATIC = resources.files("frontwire.serve") / "static"
# The only files served: a fixed table, so no request path ever reaches the file system.
MEDIA_TYPES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # a server upgrade must not leave a tab running the old script against the new API
    "Cache-Control": "no-cache",
}

router = APIRouter()


class UiLimits(BaseModel):
    max_paragraphs: int = Field(description="Paragraphs per /v1/articles request; the page splits longer text.")
    max_article_chars: int
    max_body_bytes: int


class UiConfig(BaseModel):
    auth: bool = Field(description="Whether /v1/ needs a bearer token (the page then asks for it).")
    limits: UiLimits


def _static(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=HEADERS)


@router.get("/", include_in_schema=False)
@router.get("/ui", include_in_schema=False)
async def page() -> Response:
    return _static("index.html", "text/html; charset=utf-8")


@router.get("/ui/static/{name}", include_in_schema=False)
async def static_file(name: str) -> Response:
    media_type = MEDIA_TYPES.get(name)
    if media_type is None:
        raise HTTPException(404, f"no static file {name!r}")
    return _static(name, media_type)


@router.get("/ui/config", tags=["ui"], response_model=UiConfig,
            summary="What the inspection page needs first: whether a token is needed, and the article limits.")
async def ui_config(request: Request) -> dict:
    limits = request.app.state.config.limits
    return {"auth": request.app.state.token is not None,
            "limits": {"max_paragraphs": limits.max_paragraphs, "max_article_chars": limits.max_article_chars,
                       "max_body_bytes": limits.max_body_bytes}}
