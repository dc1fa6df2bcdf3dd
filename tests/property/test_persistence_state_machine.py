"""Several writers sharing one persistence file, against a model of what the file must hold.

A Hypothesis state machine drives three registry objects (three writers: each has its own writer id) on one file,
with one fake clock: they record usage, reset a model's usage, save, fail to save (an ``OSError`` injected into
``os.replace``, the fsync of the temporary file, or the fsync of the folder after ``os.replace`` succeeded), crash
(the object is dropped without saving and a new one loads the file), and load the file again.

The model mirrors the documented semantics (see ``noa_ai_provider.merge``), per writer:

- ``view``: what its ``get_usage_stats`` shows; ``pending``: usage recorded since its last seal; ``reset``: models
  reset since then (their whole usage replaces the file's);
- ``unacked``: batches sealed by saves not known to have landed, each ``(seq, {key: (absolute, totals)})``;
- ``landed``: the newest of its batches the file holds (the file's watermark).

A save seals ``pending`` into a batch; a save that succeeds, and a save that fails after ``os.replace``, lands every
unlanded batch (adds it, or puts it when absolute); a save that fails before ``os.replace`` lands nothing. A crash
loses ``pending`` and the unlanded batches. The file model is checked exactly (requests, successes, tokens,
``Decimal`` cost) in a fresh registry after every successful save and at teardown (after every live writer saved);
each writer's view after every step.
"""

from __future__ import annotations

import errno
import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from noa_ai_provider import EnhancedModelRegistry, PersistenceError
from noa_ai_provider.testing import FakeClock

from ..faults import K_GPT, K_OPUS, PRICES, Totals, inject, shown
from ..samples import GPT4, OPUS

KEYS = (K_GPT, K_OPUS)
WRITERS = 3
FAULTS = ("replace", "fsync-file", "fsync-dir")  # only fsync-dir strikes after os.replace

ZERO: Totals = (0, 0, 0, 0, Decimal(0))


def plus(a: Totals, b: Totals) -> Totals:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


class Writer:
    """One registry object and the model of its state."""

    def __init__(self, reg: EnhancedModelRegistry, view: dict[str, Totals]) -> None:
        self.reg = reg
        self.view = dict(view)
        self.pending: dict[str, Totals] = {}
        self.reset: set[str] = set()
        self.unacked: list[tuple[int, dict[str, tuple[bool, Totals]]]] = []
        self.seq = 0
        self.landed = 0

    def seal(self) -> None:
        self.seq += 1
        deltas: dict[str, tuple[bool, Totals]] = {k: (False, t) for k, t in self.pending.items()}
        deltas.update({k: (True, self.view[k]) for k in self.reset})
        self.pending = {}
        self.reset = set()
        self.unacked.append((self.seq, deltas))

    def land(self, file: dict[str, Totals]) -> None:
        for seq, deltas in self.unacked:
            if seq > self.landed:
                for key, (absolute, totals) in deltas.items():
                    file[key] = totals if absolute else plus(file[key], totals)
        if self.unacked:
            self.landed = self.unacked[-1][0]


class SharedFile(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="noa-sm-"))
        self.path = self.dir / "registry.json"
        self.clock = FakeClock(1_700_000_000.0)
        seed = self.open()
        seed.register_models([GPT4, OPUS])
        seed.save()
        seed.close()
        self.file: dict[str, Totals] = dict.fromkeys(KEYS, ZERO)
        self.writers: list[Writer] = []
        for _ in range(WRITERS):
            reg = self.open()
            reg.load()
            self.writers.append(Writer(reg, self.file))

    def open(self) -> EnhancedModelRegistry:
        return EnhancedModelRegistry(persistence_path=self.path, auto_save=False, clock=self.clock)

    def check_file(self) -> None:
        fresh = self.open()
        try:
            fresh.load()
            for key in KEYS:
                assert shown(fresh, key) == self.file[key], key
        finally:
            fresh.close()

    # ------------------------------------------------------------------ rules

    @rule(
        w=st.integers(0, WRITERS - 1),
        key=st.sampled_from(KEYS),
        inp=st.integers(0, 10_000),
        out=st.integers(0, 10_000),
        success=st.booleans(),
    )
    def record(self, w: int, key: str, inp: int, out: int, success: bool) -> None:
        writer = self.writers[w]
        self.clock.advance(7)
        cost = writer.reg.record_usage(key, inp, out, success)
        pin, pout = PRICES[key]
        assert cost == (inp * pin + out * pout) / 1000
        one: Totals = (1, int(success), inp, out, cost)
        writer.view[key] = plus(writer.view[key], one)
        writer.pending[key] = plus(writer.pending.get(key, ZERO), one)

    @rule(w=st.integers(0, WRITERS - 1), key=st.sampled_from(KEYS))
    def reset(self, w: int, key: str) -> None:
        writer = self.writers[w]
        self.clock.advance(1)
        writer.reg.reset_usage_stats(key)
        writer.view[key] = ZERO
        writer.reset.add(key)

    @rule(w=st.integers(0, WRITERS - 1))
    def save(self, w: int) -> None:
        writer = self.writers[w]
        self.clock.advance(3)
        writer.reg.save()
        writer.seal()
        writer.land(self.file)
        writer.unacked = []
        writer.view = dict(self.file)
        assert not writer.reg.dirty
        self.check_file()
        for key in KEYS:  # nothing pending right after its save: its view is the file's
            assert shown(writer.reg, key) == self.file[key], key

    @rule(w=st.integers(0, WRITERS - 1), where=st.sampled_from(FAULTS))
    def failing_save(self, w: int, where: str) -> None:
        writer = self.writers[w]
        self.clock.advance(3)
        before = self.path.read_bytes()
        was_dirty = writer.reg.dirty
        with inject(where, self.path, fsync_file_errno=errno.EIO) as fired:
            try:
                writer.reg.save()
            except PersistenceError:
                pass
            else:
                raise AssertionError("the save did not fail")
        assert fired, where
        assert writer.reg.dirty == was_dirty  # a failed save keeps what was pending
        # No temporary file is left: neither the snapshot's nor keep_backup's hard link.
        assert [p.name for p in self.dir.glob(".registry.json.*.tmp")] == []
        writer.seal()
        if where == "fsync-dir":
            writer.land(self.file)
        else:
            assert self.path.read_bytes() == before

    @rule(w=st.integers(0, WRITERS - 1), loads=st.booleans())
    def crash(self, w: int, loads: bool) -> None:
        # auto_save=False: close() writes nothing, like a killed process; its unsaved usage is lost. The new
        # process either loads the file or only registers the models (then it starts from zero usage, and its
        # first save merges with the file).
        self.writers[w].reg.close()
        self.clock.advance(1)
        reg = self.open()
        if loads:
            reg.load()
            self.writers[w] = Writer(reg, self.file)
        else:
            reg.register_models([GPT4, OPUS])
            self.writers[w] = Writer(reg, dict.fromkeys(KEYS, ZERO))

    @rule(w=st.integers(0, WRITERS - 1))
    def reload(self, w: int) -> None:
        writer = self.writers[w]
        self.clock.advance(1)
        writer.reg.load()
        for key in KEYS:
            if key in writer.reset:
                continue  # a reset not saved yet: this process's whole usage stays
            totals = self.file[key]
            for seq, deltas in writer.unacked:  # sealed but not in the file: still its own to add
                if seq > writer.landed and key in deltas:
                    absolute, delta = deltas[key]
                    totals = delta if absolute else plus(totals, delta)
            writer.view[key] = plus(totals, writer.pending.get(key, ZERO))
        writer.unacked = [(seq, d) for seq, d in writer.unacked if seq > writer.landed]

    # ------------------------------------------------------------------ invariants

    @invariant()
    def views_match_the_model(self) -> None:
        for w, writer in enumerate(self.writers):
            for key in KEYS:
                assert shown(writer.reg, key) == writer.view[key], (w, key)

    def teardown(self) -> None:
        try:
            # Every live writer saves: the file holds all they recorded, plus what crashed writers landed.
            for writer in self.writers:
                writer.reg.save()
                writer.seal()
                writer.land(self.file)
                writer.unacked = []
            self.check_file()
            for writer in self.writers:
                writer.reg.load()
                for key in KEYS:
                    assert shown(writer.reg, key) == self.file[key], key
        finally:
            for writer in self.writers:
                writer.reg.close()
            shutil.rmtree(self.dir, ignore_errors=True)


SharedFile.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSharedFile = SharedFile.TestCase
