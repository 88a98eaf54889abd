"""training.by_strategy: each strategy may get its own epoch budget (a classical run trains on cached frozen
features, so its epochs cost a fraction of a fine-tuning one)."""

from __future__ import annotations

import pytest
from helpers import schema_config

from hatl.errors import ConfigError
from hatl.train.config import TrainConfig


def test_strategy_budget_replaces_max_epochs_and_patience_for_that_strategy_only():
    cfg = schema_config(training={"max_epochs": 20, "early_stopping": {"patience": 5},
                                  "by_strategy": {"classical": {"max_epochs": 150, "patience": 20}}})
    classical = TrainConfig.from_config(cfg, "sign2text", "classical")
    assert classical.max_epochs == 150 and classical.controller.max_epochs == 150
    assert classical.controller.early_stop_patience == 20
    for strategy in ("full", "hatl", None):
        other = TrainConfig.from_config(cfg, "sign2text", strategy)
        assert other.max_epochs == 20 and other.controller.early_stop_patience == 5


def test_strategy_budget_counts_evaluation_rounds_with_eval_every():
    cfg = schema_config(training={"eval_every": 2, "by_strategy": {"full": {"max_epochs": 9}}})
    assert TrainConfig.from_config(cfg, "sign2text", "full").controller.max_epochs == 5  # ceil(9 / 2)


def test_unknown_strategy_or_key_in_the_budget_is_refused():
    with pytest.raises(ConfigError):
        schema_config(training={"by_strategy": {"clasical": {"max_epochs": 3}}})
    with pytest.raises(ConfigError):
        schema_config(training={"by_strategy": {"classical": {"epochs": 3}}})


def test_text_only_task_keeps_the_general_budget_whatever_its_strategy_label():
    """Gloss2Text has no backbone (its one run is labelled 'full'): the fine-tuning budget of 'full' would cut a
    0.4 s epoch's training at 10 epochs, so by_strategy does not apply to it."""
    cfg = schema_config(training={"max_epochs": 20, "early_stopping": {"patience": 5},
                                  "by_strategy": {"full": {"max_epochs": 10, "patience": 3}}})
    gloss2text = TrainConfig.from_config(cfg, "gloss2text", "full")
    assert gloss2text.max_epochs == 20 and gloss2text.controller.early_stop_patience == 5
    assert TrainConfig.from_config(cfg, "sign2text", "full").max_epochs == 10
