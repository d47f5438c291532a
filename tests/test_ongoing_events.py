"""The one translator from Ongoing statuses to exchange events, and the rules that read them."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from jobs import exchange_rules as rules
from jobs.ongoing_events import EXCHANGE_ORDER, ORIGINAL_ORDER, RETURN_ORDER, event_for

SETTINGS = SimpleNamespace(order_status_sent=450, order_status_returned=800,
                           return_status_returned=200)
NO_RETURNED = SimpleNamespace(order_status_sent=450, order_status_returned=None,
                              return_status_returned=200)


@pytest.mark.parametrize(("settings", "which", "status", "event"), [
    (SETTINGS, EXCHANGE_ORDER, 300, None),
    (SETTINGS, EXCHANGE_ORDER, 450, "sent"),
    (SETTINGS, EXCHANGE_ORDER, 600, "sent"),  # a later shipping status: a missed Sent
    (SETTINGS, EXCHANGE_ORDER, 1000, None),  # Cancelled is never sent
    (SETTINGS, EXCHANGE_ORDER, None, None),
    (SETTINGS, ORIGINAL_ORDER, 800, "release"),
    (SETTINGS, ORIGINAL_ORDER, 450, None),
    (NO_RETURNED, ORIGINAL_ORDER, 800, None),  # Ongoing's standard list has no Returned
    (SETTINGS, RETURN_ORDER, 200, "release"),
    (SETTINGS, RETURN_ORDER, 100, None),
])
def test_event_for(settings, which, status, event):
    assert event_for(settings, which, status) == event


def test_an_unknown_order_kind_is_a_bug():
    with pytest.raises(ValueError):
        event_for(SETTINGS, "parcel", 450)


def test_sent_is_awaited_until_fulfilled():
    assert [s for s in rules.STATES if rules.awaited(s, rules.SENT)] == \
        ["needs_attention", "detected", "parked", "released"]


@pytest.mark.parametrize(("state", "step", "event", "kept", "ignored", "goes_on"), [
    ("parked", None, "in_transit", False, "Instant Exchange is off", "in_transit"),
    ("detected", None, "release", True, "", "release"),
    ("needs_attention", "detected:create", "release", True, "", "release"),
    ("needs_attention", "released:sent", "cancel", False, "not applicable after this failure",
     "cancel"),
    ("needs_attention", "released:create", "sent", False, "", "sent"),
])
def test_meaning(state, step, event, kept, ignored, goes_on):
    meant = rules.meaning(state, step, event, "test", instant_exchange=False,
                          release_reason=None)
    assert (meant.kept, meant.ignored, meant.event) == (kept, ignored, goes_on)
