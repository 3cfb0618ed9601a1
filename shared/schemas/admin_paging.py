"""What the control center's lists share: pages and substring search."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.schemas import Model

Search = Annotated[str, Field(min_length=1, max_length=80, description="any part of a name, phone or email")]


class PageQuery(Model):
    cursor: str | None = Field(default=None, max_length=300)
    limit: int = Field(default=50, ge=1, le=200)
