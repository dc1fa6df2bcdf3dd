"""Rate-limit rules over trailing windows, the in-memory window store, and atomic reservations. Clock injected.

What a limit means (what :meth:`ModelLimiter.check` and :meth:`ModelLimiter.reserve` answer):

- A request is admitted when one more request and its tokens keep **every** configured limit; a reservation takes
  them all at once or none (no limit is consumed when another refuses).
- Per-minute limits are an exact sliding log over the trailing 60 s: an event ``age`` seconds old counts while
  ``age < 60`` (59.9 s old counts, 60.0 s and older does not).
- Per-day limits use one-minute buckets, counted as if every event happened at the end of its bucket: they may
  refuse up to 60 s early, never late, so no 24 h window ever holds more than the limit.
- Open reservations count like recorded traffic. Committing corrects a reservation's amounts in place, at the time
  it was made, so the window's history stays what really happened; cancelling removes it.
- Provider feedback (remaining counts, reset times, ``retry-after``) can only tighten: a *phantom* amount makes
  the local window report no more than the provider's remaining until the provider's reset.

Memory: entries leave a window only by expiring, never because of the limit (a limit lowered and raised again
must still see the traffic that happened). Per-day windows hold one entry per minute; a per-minute log holds at
most ``max_entries`` entries (the request limit + 1 for a request count, and for a token log too when there is a
request limit: traffic within the request limit never reaches it), merging its oldest settled entries beyond
that, which can only refuse earlier. A window that takes over another's entries (a changed limit) keeps room for
all of them. Memory per model is bounded by the request limits (and the largest limit a model had), never by
token counts.

Cost: admission, recording, committing and cancelling are O(1) amortised; computing ``retry_after`` after a
refusal walks the entries that must expire first. No timer threads: windows expire lazily when read.
"""

from .limiter import REASONS, RETRY_AFTER, Handle, ModelLimiter
from .window import DAY, DAY_BUCKET, MINUTE, Entry, TrailingWindow

__all__ = [
    "DAY",
    "DAY_BUCKET",
    "MINUTE",
    "REASONS",
    "RETRY_AFTER",
    "Entry",
    "Handle",
    "ModelLimiter",
    "TrailingWindow",
]
