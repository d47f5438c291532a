"""The exchange's rules, in one place: its states, the events that move it, the table of
(state, event) -> (step, next state), what an event means before the table is read, when a
needs-attention exchange may take an event, the merchant's buttons and the labels the pages show.

    detected -create-> parked -release-> released -sent-> fulfilled -collect-> completed
    detected/parked/released --cancel--> cancelled
    detected/parked/released --return_updated (amend)--> the same state
    detected/parked/released --exchange_removed (withdraw)--> cancelled
    any open state --(a step fails for good)--> needs_attention --retry--> the state it left

Words (README "Words"): an *event* is what happened (Ongoing says `sent`); the *step* is the work
it runs (`fulfil`); the *state* is where the step leaves the exchange (`fulfilled`).

Pure: imports nothing from the product, so every layer above may ask it.
"""
from __future__ import annotations

from typing import NamedTuple

# --- states --------------------------------------------------------------------------------
DETECTED, PARKED, RELEASED, FULFILLED = "detected", "parked", "released", "fulfilled"
COMPLETED, CANCELLED, NEEDS_ATTENTION = "completed", "cancelled", "needs_attention"
OPEN_STATES = (DETECTED, PARKED, RELEASED, FULFILLED)
FINAL_STATES = (COMPLETED, CANCELLED)
LIVE_STATES = (NEEDS_ATTENTION, *OPEN_STATES)  # the exchange page polls while in one of these
STATES = (*LIVE_STATES, *FINAL_STATES)  # every state, in the order the pages list them
BEFORE_SENT = (DETECTED, PARKED, RELEASED)  # the warehouse has not sent the parcel yet

# --- events --------------------------------------------------------------------------------
CREATE, RELEASE, SENT, COLLECT, CANCEL = "create", "release", "sent", "collect", "cancel"
RETURN_UPDATED, EXCHANGE_REMOVED = "return_updated", "exchange_removed"
IN_TRANSIT, RETRY = "in_transit", "retry"  # rewritten before the table is read (see meaning)
RELEASE_IF_REQUESTED = "release_if_requested"  # the follow-up of create

# (state, event) -> (step, state after the step succeeds)
TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    (DETECTED, CREATE): ("create", PARKED),
    (PARKED, RELEASE): ("release", RELEASED),
    (PARKED, SENT): ("fulfil", FULFILLED),  # Sent before release: the parcel left
    (RELEASED, SENT): ("fulfil", FULFILLED),
    (FULFILLED, COLLECT): ("collect", COMPLETED),
    **{(state, CANCEL): ("cancel", CANCELLED) for state in BEFORE_SENT},
    (NEEDS_ATTENTION, CANCEL): ("cancel", CANCELLED),  # e.g. out of stock: give up
    # The merchant edited the return (returns/update): the Ongoing order follows it in place...
    **{(state, RETURN_UPDATED): ("amend", state) for state in (*BEFORE_SENT, NEEDS_ATTENTION)},
    # ... and when amend finds no exchange item left, the exchange is withdrawn.
    **{(state, EXCHANGE_REMOVED): ("withdraw", CANCELLED)
       for state in (*BEFORE_SENT, NEEDS_ATTENTION)},
}
# What runs next by itself once a step has moved the exchange into a state.
FOLLOW_UP = {PARKED: RELEASE_IF_REQUESTED, FULFILLED: COLLECT}
# The states in which an outside event still means something; elsewhere it is only noted
# (a warehouse repeating Sent after fulfilment).
AWAITED = {SENT: (*BEFORE_SENT, NEEDS_ATTENTION)}


class NeedsAttention(Exception):
    """A step cannot go on without a person: the message is shown on the exchange."""


class Then(NamedTuple):
    """A step's outcome, and the event to queue for the same exchange once it is recorded."""

    outcome: str
    event: str


def transition(state: str, event: str) -> tuple[str, str] | None:
    """(step, next state) for an event in a state, or None: the event does not apply there."""
    return TRANSITIONS.get((state, event))


def awaited(state: str, event: str) -> bool:
    """Whether an outside event is worth queuing for an exchange in `state`."""
    return state in AWAITED.get(event, STATES)


# --- what an event means before the table is read --------------------------------------------
class Meaning(NamedTuple):
    """How the lifecycle reads an incoming event: `event` goes on (maybe rewritten), or `kept`
    (a release to keep until the Ongoing order exists), or `ignored` with a reason."""

    event: str
    source: str
    kept: bool = False
    ignored: str = ""
    noted: bool = True  # an ignored event is written to the timeline


def meaning(state: str, attention_step: str | None, event: str, source: str, *,
            instant_exchange: bool, release_reason: str | None) -> Meaning:
    """Rewrite an event for the table: in transit is a release with Instant Exchange, a release
    before the Ongoing order exists waits, create's follow-up is the release asked for meanwhile,
    and a needs-attention exchange takes only what its failure allows."""
    if event == IN_TRANSIT:
        if not instant_exchange:
            return Meaning(event, source, ignored="Instant Exchange is off")
        event = RELEASE
    if event == RELEASE and left_state(state, attention_step) == DETECTED:
        return Meaning(event, source, kept=True)
    if event == RELEASE_IF_REQUESTED:
        if not release_reason:
            return Meaning(event, source, ignored="no release requested yet", noted=False)
        event, source = RELEASE, release_reason
    if state == NEEDS_ATTENTION and not allowed_in_attention(attention_step, event):
        return Meaning(event, source, ignored="not applicable after this failure")
    return Meaning(event, source)


# --- needs attention -----------------------------------------------------------------------
def attention_step(state: str, event: str) -> str:
    """What an exchange stores on failing: the state it left and the event that failed."""
    return f"{state}:{event}"


def failed(attention_step: str | None) -> tuple[str, str]:
    """(state it left, event that failed) of an exchange in needs_attention."""
    state, _, event = (attention_step or ":").partition(":")
    return state, event


def left_state(state: str, attention_step: str | None) -> str:
    """The state an exchange is in, or the one it left for needs_attention."""
    return failed(attention_step)[0] if state == NEEDS_ATTENTION else state


def allowed_in_attention(attention_step: str | None, event: str) -> bool:
    """Cancel or edit only before the parcel left; Sent only where it can still be fulfilled;
    a release only where the release itself failed (e.g. a possible double shipment)."""
    state, event_failed = failed(attention_step)
    if event in (CANCEL, RETURN_UPDATED, EXCHANGE_REMOVED):
        return state in BEFORE_SENT and event_failed not in (SENT, COLLECT)
    if event == RELEASE:
        return (state, event_failed) == (PARKED, RELEASE)
    return event == SENT and state in (PARKED, RELEASED)


def resumes_on(state: str, event: str) -> bool:
    """A Sent notice takes a needs-attention exchange back to the state it left (a missed Sent
    must not strand it), and so does a release that allowed_in_attention let through (Release
    now after the release failed)."""
    return state == NEEDS_ATTENTION and event in (SENT, RELEASE)


def retriable(state: str, attention_step: str | None) -> bool:
    """Whether Retry has a failed event to send again."""
    return state == NEEDS_ATTENTION and bool(attention_step)


# --- the merchant's buttons and the pages' words ---------------------------------------------
class Action(NamedTuple):
    event: str  # what jobs.lifecycle.signal receives
    label: str
    states: tuple[str, ...]  # where the button is offered; the lifecycle still decides
    done: str
    confirm: str = ""


CANCELLABLE = tuple(state for state, event in TRANSITIONS if event == CANCEL)
ACTIONS = {
    "retry": Action(RETRY, "Retry", (NEEDS_ATTENTION,), "Retry queued."),
    "release": Action(RELEASE, "Release now", (DETECTED, PARKED, NEEDS_ATTENTION),
                      "Release queued."),
    "in-transit": Action(IN_TRANSIT, "Mark in transit", (DETECTED, PARKED),
                         "Marked in transit: release queued."),
    "cancel": Action(CANCEL, "Cancel exchange", CANCELLABLE, "Cancellation queued.",
                     "Cancel this exchange? Swapline cancels its orders in Ongoing; "
                     "the exchange item will not ship."),
}


def offered(name: str, state: str, attention_step: str | None, *, sent: bool,
            instant_exchange: bool) -> bool:
    """Whether a button is worth showing (the lifecycle still decides what applies); `sent`:
    the warehouse has sent the parcel."""
    if state not in ACTIONS[name].states:
        return False
    if name == "in-transit":  # without Instant Exchange the lifecycle always ignores it
        return instant_exchange
    if name == "release" and state == NEEDS_ATTENTION:  # the release failed: ship anyway
        return allowed_in_attention(attention_step, RELEASE) and not sent
    if name == "cancel" and state == NEEDS_ATTENTION:  # never once the parcel left
        left, event = failed(attention_step)
        return left in CANCELLABLE and event != SENT and not sent
    return True


LABELS = {NEEDS_ATTENTION: "Needs attention", DETECTED: "Detected", PARKED: "Parked in Ongoing",
          RELEASED: "Released to the warehouse", FULFILLED: "Fulfilled", COMPLETED: "Completed",
          CANCELLED: "Cancelled"}
TONES = {NEEDS_ATTENTION: "critical", COMPLETED: "success", CANCELLED: ""}


def label(state: str) -> str:
    return LABELS.get(state, state.replace("_", " ").capitalize())


def tone(state: str) -> str:
    return TONES.get(state, "info")
