"""The bounded least-recently-used mapping behind the in-process caches."""

from __future__ import annotations

import pytest

from oidc_common.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1  # "a" is now the most recently used
    lru.put("c", 3)
    assert lru.get("b") is None
    assert (lru.get("a"), lru.get("c"), len(lru)) == (1, 3, 2)


def test_put_replaces_and_refreshes() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.put("a", 10)
    lru.put("c", 3)
    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (10, None, 3)


def test_pop_forgets_and_tolerates_absent_keys() -> None:
    lru: Lru[str, int] = Lru(1)
    lru.put("a", 1)
    lru.pop("a")
    lru.pop("never")
    assert lru.get("a") is None and len(lru) == 0


def test_a_cache_holds_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Lru(0)
