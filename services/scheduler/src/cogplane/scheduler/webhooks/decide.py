"""Which webhook events a change of a prediction fires: a pure function of what is known.

Replicate's rules (``webhook_events_filter``):

- ``start`` "immediately on prediction start": once, with the first record seen that is not
  final (normally the one at admission);
- ``output`` and ``logs`` "each time" there is new output or new log text, "at most once every
  500ms": a change inside the window is not dropped but deferred, and whatever the record is
  when the window ends is sent (the latest record supersedes the ones in between);
- ``completed`` when the prediction reaches a terminal state, "regardless of throttling"; it
  supersedes anything deferred (its body carries every output and all logs);
- no filter: "whenever there are new outputs or the prediction has finished".

Every delivery is the whole prediction, so one request serves all the events it is for, and
after it the receiver has seen everything the record held.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from cogplane.common.contracts.predictions import TERMINAL, PredictionRecord

THROTTLED = frozenset({"output", "logs"})
DEFAULT_EVENTS = frozenset({"output", "completed"})
THROTTLE_SECONDS = 0.5


@dataclass(frozen=True)
class Delivered:
    """What the receiver has been sent so far (fingerprints of output and logs)."""

    started: bool = False
    output: str | None = None
    logs: str | None = None
    finished: bool = False


@dataclass(frozen=True)
class Decision:
    """What to do with a change.

    Attributes:
        events: Send the record now, for these events (empty: send nothing now).
        wait: Throttled: decide again, with the latest record, after this many seconds.
        state: What the receiver will have been sent once this decision is carried out;
            ``finished`` means nothing more will ever be sent for this prediction.
    """

    events: frozenset[str] = frozenset()
    wait: float | None = None
    state: Delivered = Delivered()


def wanted(events_filter: Iterable[str]) -> frozenset[str]:
    """The events a filter asks for (the default when it is empty)."""
    return frozenset(events_filter) or DEFAULT_EVENTS


def fingerprint(value: Any) -> str:
    """A short digest of a JSON value, to tell whether it changed since it was sent."""
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.blake2b(raw, digest_size=16).hexdigest()


def news(want: frozenset[str], sent: Delivered, record: PredictionRecord) -> frozenset[str]:
    """The throttled events the record has something new for."""
    found = set()
    has_output = record.output not in (None, [])
    if "output" in want and has_output and fingerprint(record.output) != sent.output:
        found.add("output")
    if "logs" in want and record.logs and fingerprint(record.logs) != sent.logs:
        found.add("logs")
    return frozenset(found)


def decide(
    events_filter: Iterable[str],
    sent: Delivered,
    record: PredictionRecord,
    since_last: float | None,
    throttle: float = THROTTLE_SECONDS,
) -> Decision:
    """Decide what a new ``record`` fires.

    Args:
        events_filter: The prediction's ``webhook_events_filter``.
        sent: What was sent before.
        record: The prediction as it is now.
        since_last: Seconds since the last delivery that carried output or logs (None: never).
        throttle: The least time between two such deliveries.
    """
    if sent.finished:
        return Decision(state=sent)
    want = wanted(events_filter)
    new = news(want, sent, record)
    final = record.status in TERMINAL
    delivered = replace(
        sent,
        output=fingerprint(record.output),
        logs=fingerprint(record.logs),
        started=sent.started or not final,
        finished=final,
    )
    if final and "completed" in want:
        return Decision(frozenset({"completed"}), None, delivered)
    if "start" in want and not sent.started and not final:
        return Decision(frozenset({"start"}) | new, None, delivered)
    if not new:
        return Decision(state=replace(sent, finished=final))
    if since_last is not None and since_last < throttle:
        return Decision(wait=throttle - since_last, state=sent)
    return Decision(new, None, delivered)
