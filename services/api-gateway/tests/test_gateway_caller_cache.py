"""The verified-caller cache: expiry, bounds, and dropping what changed."""

from __future__ import annotations

import time

import pytest

from cogplane.common.contracts.accounts import Account, AccountsChanged, Caller
from cogplane.common.db import utcnow
from cogplane.gateway.auth import CallerCache


def caller(account_id: str, token_id: str) -> Caller:
    account = Account(
        id=account_id, type="user", username=account_id, name="N", created_at=utcnow()
    )
    return Caller(account=account, token_id=token_id)


def test_a_cached_caller_is_returned_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = CallerCache(ttl=30, max_entries=10)
    alice = caller("u1", "t1")
    cache.put("r8_a", alice, cache.generation)
    assert cache.get("r8_a") == alice
    assert cache.get("r8_b") is None
    later = time.monotonic() + 31
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert cache.get("r8_a") is None
    assert len(cache) == 0


def test_revoked_tokens_and_changed_accounts_are_forgotten() -> None:
    cache = CallerCache(ttl=30, max_entries=10)
    cache.put("r8_a", caller("u1", "t1"), cache.generation)
    cache.put("r8_b", caller("u1", "t2"), cache.generation)
    cache.put("r8_c", caller("u2", "t3"), cache.generation)
    cache.forget(AccountsChanged(token_ids=["t1"]))
    assert cache.get("r8_a") is None
    assert cache.get("r8_b") is not None
    cache.forget(AccountsChanged(account_ids=["u1"]))
    assert cache.get("r8_b") is None
    assert cache.get("r8_c") is not None


def test_a_verification_that_raced_a_change_is_not_cached() -> None:
    cache = CallerCache(ttl=30, max_entries=10)
    generation = cache.generation  # read before asking the registry
    cache.forget(AccountsChanged(token_ids=["t1"]))  # the revocation lands meanwhile
    cache.put("r8_a", caller("u1", "t1"), generation)
    assert cache.get("r8_a") is None


def test_clear_empties_the_cache_and_invalidates_in_flight_verifications() -> None:
    cache = CallerCache(ttl=30, max_entries=10)
    generation = cache.generation
    cache.put("r8_a", caller("u1", "t1"), generation)
    cache.clear()
    assert len(cache) == 0
    cache.put("r8_b", caller("u1", "t2"), generation)
    assert cache.get("r8_b") is None


def test_least_recently_used_entries_go_first() -> None:
    cache = CallerCache(ttl=30, max_entries=2)
    cache.put("r8_a", caller("u1", "t1"), cache.generation)
    cache.put("r8_b", caller("u2", "t2"), cache.generation)
    assert cache.get("r8_a") is not None  # a is now the most recent
    cache.put("r8_c", caller("u3", "t3"), cache.generation)
    assert cache.get("r8_b") is None
    assert cache.get("r8_a") is not None
    assert cache.get("r8_c") is not None


def test_zero_ttl_disables_the_cache() -> None:
    cache = CallerCache(ttl=0, max_entries=2)
    cache.put("r8_a", caller("u1", "t1"), cache.generation)
    assert cache.get("r8_a") is None
