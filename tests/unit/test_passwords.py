"""The password rule, Argon2id hashing with configured parameters, and rehash detection."""

from __future__ import annotations

import argon2
import pytest

from authorize_service.users.password_policy import WeakPasswordError, check_password
from authorize_service.users.passwords import Passwords
from oidc_common.config import ConfigError, Settings

EMAIL = "jane@example.com"


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "too weak"),
        ("1234567", "too weak"),
        ("ééééééé", "too weak"),  # 7 characters, 14 bytes: characters count
        ("x" * 1025, "too long"),
        (EMAIL, "user information"),
        ("JANE@Example.COM", "user information"),
        (f" {EMAIL} ", "user information"),
    ],
)
def test_weak_passwords_are_refused(password: str, message: str) -> None:
    with pytest.raises(WeakPasswordError, match=message) as refused:
        check_password(password, EMAIL)
    assert password.strip() not in str(refused.value) or not password.strip()


@pytest.mark.parametrize("password", ["12345678", "éééééééé", "x" * 1024, "jane@example.co"])
def test_acceptable_passwords(password: str) -> None:
    check_password(password, EMAIL)


CHEAP = Passwords(time_cost=1, memory_cost=8192, parallelism=1)


async def test_hash_is_argon2id_with_the_configured_parameters() -> None:
    hashed = await CHEAP.hash("correct horse")
    assert hashed.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    parameters = argon2.extract_parameters(hashed)
    assert parameters == CHEAP.parameters
    assert parameters.salt_len == 16 and parameters.hash_len == 32
    assert await CHEAP.hash("correct horse") != hashed  # a fresh salt each time


async def test_verify() -> None:
    hashed = await CHEAP.hash("correct horse")
    assert await CHEAP.verify(hashed, "correct horse")
    assert not await CHEAP.verify(hashed, "correct horsE")
    assert not await CHEAP.verify(hashed, "")
    assert not await CHEAP.verify("not a hash", "correct horse")
    assert not await CHEAP.verify("", "correct horse")
    # A lone surrogate (possible in JSON) hashes and fails like any other input.
    assert not await CHEAP.verify(hashed, "\ud800")
    assert await CHEAP.verify(await CHEAP.hash("\ud800abc"), "\ud800abc")
    await CHEAP.verify_dummy("anything")  # spends a verification, matches nothing


async def test_needs_rehash_when_any_parameter_differs() -> None:
    hashed = await CHEAP.hash("correct horse")
    assert not CHEAP.needs_rehash(hashed)
    for other in (
        Passwords(time_cost=2, memory_cost=8192, parallelism=1),
        Passwords(time_cost=1, memory_cost=16384, parallelism=1),
        Passwords(time_cost=1, memory_cost=8192, parallelism=2),
    ):
        assert other.needs_rehash(hashed)
        assert await other.verify(hashed, "correct horse")  # old hashes keep verifying
    argon2i = argon2.PasswordHasher(
        time_cost=1, memory_cost=8192, parallelism=1, type=argon2.Type.I
    ).hash("correct horse")
    assert CHEAP.needs_rehash(argon2i)
    assert CHEAP.needs_rehash("not a hash")


def test_parameters_come_from_configuration() -> None:
    defaults = Settings.from_env("authorize", {})
    assert (defaults.argon2_time_cost, defaults.argon2_memory_cost) == (3, 65536)
    assert defaults.argon2_parallelism == 1
    configured = Settings.from_env(
        "authorize",
        {"ARGON2_TIME_COST": "2", "ARGON2_MEMORY_COST": "19456", "ARGON2_PARALLELISM": "2"},
    )
    assert Settings.from_env("authorize", configured.to_env()) == configured
    parameters = Passwords.from_settings(configured).parameters
    assert (parameters.time_cost, parameters.memory_cost, parameters.parallelism) == (2, 19456, 2)
    assert parameters.type is argon2.Type.ID


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ARGON2_TIME_COST", "0"),
        ("ARGON2_TIME_COST", "three"),
        ("ARGON2_MEMORY_COST", "512"),
        ("ARGON2_MEMORY_COST", str(8 * 1024 * 1024)),
        ("ARGON2_PARALLELISM", "0"),
        ("ARGON2_PARALLELISM", "65"),
    ],
)
def test_bad_parameters_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env("authorize", {name: value})
