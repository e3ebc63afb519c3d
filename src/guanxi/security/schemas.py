"""API shapes of users and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from guanxi.security.permissions import Role


class TokenRequest(BaseModel):
    """Credentials for ``POST /api/v1/auth/token``."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenRead(BaseModel):
    """A bearer token; send it as ``Authorization: Bearer <access_token>``."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: datetime


class UserCreate(BaseModel):
    """A new user, created by an administrator."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    display_name: str = Field(min_length=1, max_length=100)
    role: Role
    password: str = Field(min_length=8, max_length=256)
    language: str | None = Field(default=None, pattern=r"^(zh_CN|en)$")


class UserRead(BaseModel):
    """A user as others see it (never the hash)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    display_name: str
    role: Role
    is_active: bool
    language: str | None
    permissions: list[str] = []
