"""The OpenAPI schema and its browsable docs, behind the same access rules as the API
(only ``/api/info`` is open: the schema names every endpoint a server offers)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from ..deps import API_DEPENDENCIES

router = APIRouter(dependencies=API_DEPENDENCIES, include_in_schema=False)


@router.get("/openapi.json")
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{request.app.title} - API")
