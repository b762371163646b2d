"""Users of a tenant's `Username-Password-Authentication` database connection, in MongoDB.

Stored shape (collection `users`):

    {"_id": "auth0|<24 hex>", "tenant_id": str, "connection": "Username-Password-Authentication",
     "email": str (lowercase), "email_verified": bool, "name": str | None,
     "password_hash": "$argon2id$v=19$m=…,t=…,p=…$…", "created_at": datetime,
     "updated_at": datetime}

The unique index on (tenant_id, email) makes emails unique per tenant; as they are stored
lowercased, that uniqueness is case-insensitive.
"""

from __future__ import annotations

import builtins
import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oidc_common.management_requests import is_storable_text
from oidc_common.mongo import Collections, Document

from .emails import lookup_form, normalize_email
from .search import parse_user_query

CONNECTION = "Username-Password-Authentication"
USER_ID_PREFIX = "auth0|"
# Auth0 lets a search page through its first 1000 results only; so does this one, which also
# keeps `skip` short.
MAX_SEARCH_RESULTS = 1000


class DuplicateEmailError(Exception):
    """Another user of the tenant already has this email (compared case-insensitively)."""


def new_user_id() -> str:
    """`auth0|` and 24 random hex digits, the form of Auth0's database-connection users."""
    return USER_ID_PREFIX + secrets.token_hex(12)


@dataclass(frozen=True)
class User:
    """One user. `password_hash` is left out of `repr` and comparisons; the Management API
    view is built field by field and never includes it."""

    user_id: str
    tenant_id: str
    email: str
    email_verified: bool
    name: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    password_hash: str = field(repr=False, compare=False)

    @property
    def connection(self) -> str:
        return CONNECTION


def _user(doc: Document) -> User:
    return User(
        user_id=doc["_id"],
        tenant_id=doc["tenant_id"],
        email=doc["email"],
        email_verified=bool(doc.get("email_verified", False)),
        name=doc.get("name"),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at") or doc["created_at"],
        password_hash=doc["password_hash"],
    )


def _now() -> dt.datetime:
    # MongoDB keeps milliseconds: trim here so the returned user equals the stored one.
    now = dt.datetime.now(dt.UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Users:
    """The tenant-scoped user store. Every method takes the tenant id first: no query ever
    reaches another tenant's users."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._users = db[Collections.USERS]

    async def create(
        self,
        tenant_id: str,
        email: str,
        password_hash: str,
        *,
        email_verified: bool = False,
        name: str | None = None,
    ) -> User:
        """Store a new user with a fresh `auth0|…` id and return it.

        `email` is validated and lowercased (`InvalidEmailError`); `password_hash` must already
        be a hash (`Passwords.hash`) of a password that passed `check_password`.
        Raises `DuplicateEmailError` when the tenant has a user with that email in any case."""
        now = _now()
        user = User(
            user_id=new_user_id(),
            tenant_id=tenant_id,
            email=normalize_email(email),
            email_verified=email_verified,
            name=name,
            created_at=now,
            updated_at=now,
            password_hash=password_hash,
        )
        try:
            await self._users.insert_one(
                {
                    "_id": user.user_id,
                    "tenant_id": tenant_id,
                    "connection": CONNECTION,
                    "email": user.email,
                    "email_verified": email_verified,
                    "name": name,
                    "password_hash": password_hash,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        except DuplicateKeyError as exc:
            # The unique (tenant_id, email) index is the guard; a 96-bit id never collides.
            raise DuplicateEmailError(f"a user with email {user.email!r} already exists") from exc
        return user

    async def get(self, tenant_id: str, user_id: str) -> User | None:
        """The user with this id in this tenant, or None (also for an id no user can have)."""
        if not is_storable_text(user_id):
            return None  # a lone surrogate (possible in JSON) cannot even be sent to MongoDB
        doc = await self._users.find_one({"_id": user_id, "tenant_id": tenant_id})
        return _user(doc) if doc is not None else None

    async def find_by_email(self, tenant_id: str, email: str) -> User | None:
        """The user with this email in this tenant, compared case-insensitively (and with
        surrounding spaces ignored), or None; None without a query for a non-address."""
        key = lookup_form(email)
        if key is None:
            return None
        doc = await self._users.find_one({"tenant_id": tenant_id, "email": key})
        return _user(doc) if doc is not None else None

    async def list(
        self,
        tenant_id: str,
        page: int,
        per_page: int,
        email: str | None = None,
        q: str | None = None,
    ) -> tuple[builtins.list[User], int]:
        """One page (0-based) of the tenant's users, oldest first, and how many match.

        `email` matches one address case-insensitively; `q` is a user search
        (`search.parse_user_query`: raises `UserQueryError` outside the supported syntax).
        Both given: users matching both."""
        query: dict[str, Any] = {"tenant_id": tenant_id}
        conditions: builtins.list[tuple[str, str]] = []
        if email is not None:
            conditions.append(("email", email))
        if q is not None:
            clause = parse_user_query(q)
            conditions.append((clause.field, clause.value))
        for name, value in conditions:
            if name == "email":
                key = lookup_form(value)
                if key is None:
                    return [], 0  # no account can have this address
                value = key
            stored = "_id" if name == "user_id" else name
            if query.get(stored, value) != value:
                return [], 0  # two different values for one field
            query[stored] = value
        cursor = (
            self._users.find(query)
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .skip(page * per_page)
            .limit(per_page)
        )
        users = [_user(doc) async for doc in cursor]
        total = await self._users.count_documents(query)
        return users, total

    async def delete(self, tenant_id: str, user_id: str) -> bool:
        """Delete the user; False when the tenant has no such user."""
        result = await self._users.delete_one({"_id": user_id, "tenant_id": tenant_id})
        return result.deleted_count == 1

    async def replace_password_hash(
        self,
        tenant_id: str,
        user_id: str,
        password_hash: str,
        *,
        expected_hash: str | None = None,
    ) -> bool:
        """Store a new hash of the user's password; True when a user was updated.

        With `expected_hash` (a rehash at login), only while the stored hash is still that
        one: a password changed meanwhile is not overwritten by a hash of the old one."""
        query: dict[str, Any] = {"_id": user_id, "tenant_id": tenant_id}
        if expected_hash is not None:
            query["password_hash"] = expected_hash
        result = await self._users.update_one(
            query, {"$set": {"password_hash": password_hash, "updated_at": _now()}}
        )
        return result.matched_count == 1
