"""Validating and merging a JSON settings document, member by member (PATCH semantics).

A schema is an `Obj` whose members are validators or nested `Obj`s. `merge` applies a patch
to the current document: it changes only the members the patch names, merges nested objects
key by key, and refuses unknown members, wrong types and out-of-range values with a
SettingsValidationError naming the member's path (`dynamic_client_registration.max_clients`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Obj",
    "SettingsValidationError",
    "Validator",
    "boolean",
    "integer",
    "merge",
    "string_list",
]


class SettingsValidationError(ValueError):
    """A settings value refused; `path` names it, the message is `path: problem`."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path


# (path of the member, its value) -> the value to store; raises SettingsValidationError.
Validator = Callable[[str, Any], Any]


@dataclass(frozen=True)
class Obj:
    """A nested object whose members merge key by key."""

    fields: dict[str, Validator | Obj]


def merge(schema: Obj, current: dict[str, Any], patch: Any, path: str = "") -> dict[str, Any]:
    """`current` with `patch` applied under `schema` (a new document; `current` is not
    changed). Raises SettingsValidationError naming the first bad member."""
    if not isinstance(patch, dict):
        raise SettingsValidationError(path, "expected an object")
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        child = f"{path}.{key}" if path else key
        rule = schema.fields.get(key)
        if rule is None:
            raise SettingsValidationError(child, "unknown field")
        if isinstance(rule, Obj):
            merged[key] = merge(rule, current.get(key) or {}, value, child)
        else:
            merged[key] = rule(child, value)
    return merged


def boolean(path: str, value: Any) -> Any:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise SettingsValidationError(path, "expected a boolean")
    return value


def integer(minimum: int, maximum: int) -> Validator:
    """A validator of JSON integers in minimum..maximum."""

    def check(path: str, value: Any) -> Any:
        # bool is an int subclass in Python; JSON true is not a number.
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsValidationError(path, "expected an integer")
        if not minimum <= value <= maximum:
            raise SettingsValidationError(path, f"must be between {minimum} and {maximum}")
        return value

    return check


def string_list(item: Callable[[str], str], max_items: int) -> Validator:
    """A validator of JSON arrays of at most `max_items` distinct strings, each checked by
    `item` (which returns the value to store or raises ValueError saying why)."""

    def check(path: str, value: Any) -> Any:
        if not isinstance(value, list):
            raise SettingsValidationError(path, "expected an array of strings")
        if len(value) > max_items:
            raise SettingsValidationError(path, f"at most {max_items} values")
        stored: list[str] = []
        for index, entry in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(entry, str):
                raise SettingsValidationError(where, "expected a string")
            try:
                checked = item(entry)
            except ValueError as exc:
                raise SettingsValidationError(where, str(exc)) from exc
            if checked in stored:
                raise SettingsValidationError(where, "duplicate value")
            stored.append(checked)
        return stored

    return check
