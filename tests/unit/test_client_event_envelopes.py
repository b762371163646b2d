"""Client events of one batch become one message per (type, tenant, reason); a journal
entry reads back as written."""

from __future__ import annotations

import pytest

from oidc_common.events import CLIENT_DELETED, CLIENT_REGISTERED
from registration_service.events.client_events import ClientEvent, JournalEntry, envelopes


def test_a_batch_is_grouped_by_type_tenant_and_reason_in_order() -> None:
    batch = [
        ClientEvent("client.registered", "t1", "a"),
        ClientEvent("client.registered", "t2", "b"),
        ClientEvent("client.registered", "t1", "c"),
        ClientEvent("client.deleted", "t1", "d", "evicted"),
        ClientEvent("client.deleted", "t1", "e", "self"),
    ]
    messages = [(e.type, e.tenant_id, e.data) for e, _ in envelopes(batch)]
    assert messages == [
        ("client.registered", "t1", {"client_ids": ["a", "c"]}),
        ("client.registered", "t2", {"client_ids": ["b"]}),
        ("client.deleted", "t1", {"client_ids": ["d"], "reason": "evicted"}),
        ("client.deleted", "t1", {"client_ids": ["e"], "reason": "self"}),
    ]
    # Each message knows the events it carries (refused ones stay with the publisher).
    assert [len(members) for _, members in envelopes(batch)] == [2, 1, 1, 1]


def test_a_client_named_twice_in_a_batch_is_listed_once() -> None:
    batch = [ClientEvent("client.updated", "t1", "a"), ClientEvent("client.updated", "t1", "a")]
    [(envelope, members)] = envelopes(batch)
    assert envelope.data == {"client_ids": ["a"]}
    assert len(members) == 2  # both announcements are carried (and answered)


def test_a_journal_entry_reads_back_as_written_and_a_foreign_one_is_refused() -> None:
    entry = JournalEntry.new(ClientEvent(CLIENT_DELETED, "t1", "c1", "evicted"))
    again = JournalEntry.parse(entry.member.encode())
    assert (again.event, again.member, again.tentative) == (entry.event, entry.member, False)
    tentative = JournalEntry.new(ClientEvent(CLIENT_REGISTERED, "t1", "c1"), tentative=True)
    assert JournalEntry.parse(tentative.member).tentative
    assert entry.member != JournalEntry.new(entry.event).member  # one per announcement
    for foreign in (b"not json", b"[1, 2]", b'{"a": 1}'):
        with pytest.raises(ValueError):
            JournalEntry.parse(foreign)
