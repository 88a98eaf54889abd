"""The HATL controller as a pure unit, driven by scripted dev-metric sequences (no torch, no data)."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from hatl.train.controller import (
    ControllerConfig,
    ControllerState,
    HatlController,
    default_release_order,
    is_better,
    moving_average,
)
from helpers import schema_train_config

FLAT = 0.25  # a plateaued BLEU-4 (as a fraction)


def table4(**over) -> ControllerConfig:
    """Table 4's schedule (the schema's defaults) over a 10-layer backbone released top-down, with BLEU-4 (max) thresholds."""
    base = schema_train_config().controller_config("hatl", 10)
    assert (base.release_order, base.mode, base.delta, base.tau, base.max_epochs) == (tuple(range(10, 0, -1)), "max", 0.002, 0.002, 100)
    return dataclasses.replace(base, **over)


def drive(ctrl: HatlController, metrics: list[float]) -> list[dict]:
    """Run epochs 1..len(metrics); return one record per epoch of what the controller said."""
    out = []
    for e, m in enumerate(metrics, start=ctrl.state.last_epoch + 1):
        start = ctrl.begin_epoch(e)
        end = ctrl.end_epoch(e, m)
        out.append({"epoch": e, "start": start, "end": end})
        if end.stop:
            break
    return out


def releases(records: list[dict]) -> dict[int, int]:
    return {r["start"].release: r["epoch"] for r in records if r["start"].release is not None}


def test_moving_average_and_better():
    assert moving_average([1.0, 2.0, 3.0, 4.0], 3) == pytest.approx(3.0)
    assert moving_average([2.0], 3) == 2.0  # fewer values at the start
    assert is_better(0.3, None, "max") and is_better(0.3, 0.2, "max") and not is_better(0.2, 0.2, "max")
    assert is_better(1.0, 2.0, "min") and not is_better(2.0, 1.0, "min")
    assert not is_better(0.2005, 0.2, "max", min_improvement=0.001)


def test_first_release_after_warmup_window_and_patience_4():
    # Flat metric: stable from the first epoch the window is full and the warm-up is over (epoch 3).
    # Patience 4 -> the criterion holds at epochs 3, 4, 5, 6 -> L10 becomes trainable at the start of epoch 7.
    ctrl = HatlController(table4())
    recs = drive(ctrl, [FLAT] * 7)
    assert releases(recs) == {10: 7}
    assert recs[5]["end"].release_next == 10  # decided at the end of epoch 6
    assert all(r["start"].release is None for r in recs[:6])


def test_no_release_during_warmup_even_if_stable():
    ctrl = HatlController(table4(warmup_epochs=5, patience_first=1))
    recs = drive(ctrl, [FLAT] * 7)
    # warm-up 5: the first epoch that may count is 6 -> decided at 6, released at 7
    assert releases(recs) == {10: 7}


def test_patience_resets_on_an_unstable_epoch():
    # Epoch 5 jumps by far more than Δ: the streak restarts and needs 4 new stable epochs.
    seq = [FLAT, FLAT, FLAT, FLAT, FLAT + 0.05, FLAT + 0.05, FLAT + 0.05, FLAT + 0.05, FLAT + 0.05, FLAT + 0.05, FLAT + 0.05]
    ctrl = HatlController(table4(early_stop_patience=50))
    recs = drive(ctrl, seq)
    # |M-M̄| <= 0.002 again once the window holds only the new level: epochs 7, 8, 9, 10 -> release at 11
    assert releases(recs) == {10: 11}


def test_tau_also_has_to_hold():
    # Δ generous, τ tight: a gap of 0.001 passes Δ but not τ, so nothing is released.
    seq = [0.1, 0.101, 0.102, 0.103, 0.104, 0.105, 0.106, 0.107, 0.108]
    ctrl = HatlController(table4(delta=1.0, tau=0.0005, early_stop_patience=50))
    assert releases(drive(ctrl, seq)) == {}
    ctrl = HatlController(table4(delta=1.0, tau=0.01, early_stop_patience=50))
    assert releases(drive(ctrl, seq)) == {10: 7}


def test_restore_before_release_and_cooldown_then_later_patience():
    ctrl = HatlController(table4(patience_later=2, early_stop_patience=50))
    recs = drive(ctrl, [FLAT] * 20)
    rel = releases(recs)
    # L10 at 7; cooldown epochs 7, 8, 9 do not count; stable at 10, 11 (patience 2) -> L9 at 12; then 17.
    assert rel == {10: 7, 9: 12, 8: 17}
    first = recs[6]["start"]
    assert first.restore_best and first.in_cooldown
    types = [e["type"] for e in first.events]
    assert types.index("restore") < types.index("release")  # restore comes first
    assert [r["start"].in_cooldown for r in recs[6:12]] == [True, True, True, False, False, True]
    cooldown_events = [e for r in recs[6:9] for e in r["start"].events if e["type"] == "cooldown"]
    assert len(cooldown_events) == 3


def test_no_restore_when_disabled():
    ctrl = HatlController(table4(restore_before_release=False))
    recs = drive(ctrl, [FLAT] * 7)
    assert recs[6]["start"].release == 10 and not recs[6]["start"].restore_best


def test_delta_decays_every_5_epochs():
    ctrl = HatlController(table4(release_order=(), early_stop_patience=100))
    recs = drive(ctrl, [0.1 + 0.01 * e for e in range(16)])  # improving: never stops early
    deltas = [r["end"].delta for r in recs]
    assert deltas[:5] == [0.002] * 5  # epochs 1-5 use Δ0; the decay applies after epoch 5
    assert deltas[5] == pytest.approx(0.002 * 0.95)
    assert deltas[10] == pytest.approx(0.002 * 0.95**2)
    assert deltas[15] == pytest.approx(0.002 * 0.95**3)


def test_delta_decay_can_block_a_release():
    # A steady climb of 0.0015 per epoch gives |M-M̄| = 0.0015 (window 3). It passes Δ0 = 0.002 but, with a
    # harsh decay, Δ drops below 0.0015 before patience is reached.
    seq = [0.1 + 0.0015 * e for e in range(12)]
    ok = HatlController(table4(tau=1.0, early_stop_patience=50))
    assert releases(drive(ok, seq[:8])) == {10: 7}
    harsh = HatlController(table4(tau=1.0, delta_decay=0.5, delta_decay_every=2, early_stop_patience=50))
    assert releases(drive(harsh, seq)) == {}


def test_early_stop_after_patience_without_improvement():
    # Classical/full: nothing to release. Best at epoch 3, then 5 epochs without improvement -> stop at 8.
    ctrl = HatlController(table4(release_order=()))
    recs = drive(ctrl, [0.1, 0.2, 0.3, 0.29, 0.28, 0.27, 0.26, 0.25, 0.24])
    assert recs[-1]["epoch"] == 8 and recs[-1]["end"].stop
    assert recs[-1]["end"].stop_reason.startswith("early_stopping")
    assert ctrl.state.best == 0.3 and ctrl.state.best_epoch == 3


def test_early_stop_does_not_count_cooldown_epochs():
    # Release at 7 (flat), then a falling metric: cooldown 7-9 not counted, so 5 non-improving
    # epochs are 10..14 and the run stops at 14 (patience_later high so no second release).
    seq = [FLAT] * 6 + [FLAT - 0.05 - 0.01 * i for i in range(20)]
    ctrl = HatlController(table4(patience_later=50))
    recs = drive(ctrl, seq)
    assert releases(recs) == {10: 7}
    assert recs[-1]["epoch"] == 14 and recs[-1]["end"].stop_reason.startswith("early_stopping")


def test_stop_waits_for_a_pending_release():
    # Flat from epoch 1: without the release rule, early stopping would fire at epoch 6 (best at 1).
    # The release decided at epoch 6 wins; the new layer gets its cooldown and 5 more epochs.
    ctrl = HatlController(table4(patience_later=50))
    recs = drive(ctrl, [FLAT] * 30)
    assert releases(recs) == {10: 7}
    assert recs[-1]["epoch"] == 14  # cooldown 7-9, then 10..14 without improvement


def test_min_mode_ctc_loss():
    ctrl = HatlController(table4(mode="min", delta=0.003, tau=0.003, release_order=(10, 9)))
    # Every epoch is a new best, but from epoch 5 on by less than Δ: a plateau for the release rule
    # (stable at 5, 6, 7, 8 -> decided at the end of 8 -> L10 trainable from epoch 9), never an early stop.
    recs = drive(ctrl, [3.0, 2.0, 1.5, 1.499, 1.498, 1.4975, 1.497, 1.4968])
    assert releases(recs) == {} and recs[-1]["end"].release_next == 10
    assert [r["end"].improved for r in recs] == [True] * 8
    recs = drive(ctrl, [1.4967])
    assert releases(recs) == {10: 9}
    assert ctrl.state.best == pytest.approx(1.4967)


def test_all_layers_released_then_only_early_stopping():
    ctrl = HatlController(table4(release_order=(2, 1), patience_later=1))
    recs = drive(ctrl, [FLAT] * 40)
    assert releases(recs) == {2: 7, 1: 11}
    assert ctrl.remaining == []
    assert recs[-1]["end"].stop_reason.startswith("early_stopping")
    assert recs[-1]["epoch"] == 11 + 3 + 5 - 1  # cooldown 11-13, then 14..18 without improvement


def test_max_epochs_stop():
    ctrl = HatlController(table4(release_order=(), max_epochs=4))
    recs = drive(ctrl, [0.1, 0.2, 0.3, 0.4, 0.5])
    assert len(recs) == 4 and recs[-1]["end"].stop_reason.startswith("max_epochs")


def test_state_round_trips_through_json_and_continues_identically():
    seq = [FLAT] * 9 + [FLAT + 0.001 * i for i in range(10)]
    whole = HatlController(table4())
    rec_whole = drive(whole, seq)
    part = HatlController(table4())
    drive(part, seq[:8])
    saved = json.loads(json.dumps(part.state.to_dict()))
    resumed = HatlController(table4(), ControllerState.from_dict(saved))
    rec_rest = drive(resumed, seq[8:])
    assert resumed.state == whole.state
    assert [r["end"].metric_avg for r in rec_rest] == [r["end"].metric_avg for r in rec_whole[8:]]


def test_epochs_must_follow_each_other():
    ctrl = HatlController(table4())
    ctrl.begin_epoch(1)
    ctrl.end_epoch(1, 0.1)
    with pytest.raises(ValueError, match="does not follow"):
        ctrl.begin_epoch(3)


def test_release_orders():
    assert default_release_order(4, "top_down") == (4, 3, 2, 1)
    assert default_release_order(4, "bottom_up") == (1, 2, 3, 4)
    assert default_release_order(4, [2, 4]) == (2, 4)
    with pytest.raises(ValueError, match="outside"):
        default_release_order(4, [5])
    with pytest.raises(ValueError):
        default_release_order(4, "middle_out")
    with pytest.raises(ValueError, match="repeats"):
        table4(release_order=(1, 1))


@pytest.mark.parametrize(("field", "value", "problem"), [
    ("mode", "avg", "mode must be 'max' or 'min', not 'avg'"),
    ("window", 0, "window must be >= 1, not 0"),
    ("patience_first", 0, "patience_first must be >= 1, not 0"),
    ("patience_later", -1, "patience_later must be >= 1, not -1"),
    ("delta_decay_every", 0, "delta_decay_every must be >= 1, not 0"),
    ("early_stop_patience", 0, "early_stop_patience must be >= 1, not 0"),
    ("max_epochs", 0, "max_epochs must be >= 1, not 0"),
])
def test_config_refuses_settings_the_schedule_cannot_run(field, value, problem):
    with pytest.raises(ValueError, match=re.escape(problem)):
        table4(**{field: value})
    table4(**{field: "min" if field == "mode" else 1})  # the nearest valid value is accepted
