"""API shapes of users and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from guanxi.security.permissions import Role


def normalize_user_email(value: str) -> str:
    """A work address, checked for syntax only (no DNS lookup), domain lower-cased.

    Stored in its ASCII form (an internationalised domain as punycode) so any SMTP relay
    accepts it; a non-ASCII local part is refused for the same reason.
    """
    try:
        checked = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        raise PydanticCustomError("email_invalid", "Not a valid e-mail address") from None
    return checked.ascii_email or checked.normalized


UserEmail = Annotated[str, Field(max_length=254), AfterValidator(normalize_user_email)]


class TokenRequest(BaseModel):
    """Credentials for ``POST /api/v1/auth/token``; ``otp`` (a TOTP or recovery code) is
    required once the user has a second factor."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    otp: str | None = Field(default=None, max_length=20)


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
    # Length and the other rules: security/passwords.py (GUANXI_PASSWORD_MIN_LENGTH).
    password: str = Field(min_length=1, max_length=256)
    language: str | None = Field(default=None, pattern=r"^(zh_CN|en)$")
    # Work address for notifications by e-mail; without one the user is told in the app only.
    email: UserEmail | None = None


class UserUpdate(BaseModel):
    """Changes to a user by an administrator; only the fields sent change (null clears).
    A new role or ``is_active: false`` ends the user's sessions and tokens."""

    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Role | None = None
    is_active: bool | None = None
    language: str | None = Field(default=None, pattern=r"^(zh_CN|en)$")
    email: UserEmail | None = None

    @field_validator("display_name", "role", "is_active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise PydanticCustomError("null_not_allowed", "This field cannot be emptied")
        return value


class UserRead(BaseModel):
    """A user as others see it (never the hash)."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    display_name: str
    role: Role
    is_active: bool
    language: str | None
    email: str | None = None
    permissions: list[str] = []
    second_factor: bool = False
    locked_until: datetime | None = None
    last_login_at: datetime | None = None

    @classmethod
    def of(cls, user: Any) -> UserRead:
        """The read shape of a user row (second_factor from its enrolment time)."""
        read = cls.model_validate(user)
        read.second_factor = user.totp_enabled_at is not None
        return read


class PasswordChange(BaseModel):
    """A user's own password change."""

    model_config = ConfigDict(extra="forbid")
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class PasswordReset(BaseModel):
    """An administrator's new password for a user."""

    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=1, max_length=256)


class ApiTokenCreate(BaseModel):
    """A named API token; ``scopes`` narrows it to some of the role's permissions
    (omitted: the whole role), ``read_only`` to the role's ``*.read`` permissions."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    expires_days: int = Field(default=30, ge=1, le=365)
    scopes: list[str] | None = Field(default=None, max_length=100)
    read_only: bool = False


class ApiTokenCreated(BaseModel):
    """A new API token: the secret is shown this once."""

    id: int
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    name: str
    scopes: list[str] | None
    expires_at: datetime


class SessionRead(BaseModel):
    """One of the user's browser sessions or API tokens (address and agent as stored:
    the address masked)."""

    id: int
    kind: str
    name: str | None
    scopes: list[str] | None
    created_at: datetime
    last_seen_at: datetime | None
    expires_at: datetime
    client_address: str | None
    user_agent: str | None
    current: bool = False
