"""Training data: split loading, fold selection, length-bucketed batching, the batch format.

Also home of the tiny synthetic run inputs (normalised Parquet, vocabularies, a 10-layer ST-GCN++ with
6 base channels, a config with a tiny translator) that the other test_train*.py files build on.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hatl.config import REPO_ROOT, load_config
from hatl.errors import InputError
from hatl.keypoint_store import KeypointRecord, write_keypoints
from hatl.landmarks import build_layout
from hatl import batches as D

GLOSSES = ["SONNE", "REGEN", "WIND", "MORGEN", "HEUTE", "NORD"]
WORDS = {"SONNE": "sonne", "REGEN": "regen", "WIND": "wind", "MORGEN": "morgen", "HEUTE": "heute", "NORD": "im norden"}
LAYOUT = build_layout(("left_hand",), "reduced")  # 21 joints, 1 group: small and fast

TINY_TRAINING = {
    "max_epochs": 4,
    "batch_size": 4,
    "eval_batch_size": 8,
    "threads": 1,
    "bucketing": {"enabled": True, "pool_batches": 2},
    "lr": {"encoder": 3e-3, "decoder": 3e-3, "backbone": 1e-3, "warmup_min_steps": 2},
    "hatl": {"warmup_epochs": 1, "window": 2, "patience_first": 1, "patience_later": 1, "cooldown_epochs": 1,
             "thresholds": {"bleu4": 1.0, "ctc_loss": 100.0, "wer": 1.0}},
}
TINY_MODEL = {
    name: {"hidden": 16, "heads": 2, "feedforward": 32, "dropout": 0.1, "encoder_layers": 1, "decoder_layers": 1}
    for name in ("transformer", "adat")
}


def synthetic_sample(rng: np.random.Generator, sid: str, split: str, fold: int = -1) -> KeypointRecord:
    """A sample whose motion depends on its glosses, so a model can learn something in a few epochs."""
    n = int(rng.integers(1, 4))
    glosses = [GLOSSES[int(i)] for i in rng.integers(0, len(GLOSSES), n)]
    frames = []
    for g in glosses:
        k = GLOSSES.index(g)
        t = int(rng.integers(4, 8))
        base = np.zeros((t, LAYOUT.num_joints, 3), np.float32)
        base[..., 0] = 0.1 * k + 0.02 * np.arange(t)[:, None]
        base[..., 1] = 0.05 * np.arange(LAYOUT.num_joints)[None, :] * (k + 1)
        frames.append(base + 0.01 * rng.standard_normal(base.shape).astype(np.float32))
    lm = np.concatenate(frames)
    text = " ".join(WORDS[g] for g in glosses) + "."
    return KeypointRecord(sid, split, lm, np.ones((lm.shape[0], 1), bool), 25.0,
                          extra={"gloss": " ".join(glosses), "text": text.capitalize(), "signer": "s1", "fold": fold})


def write_tiny_dataset(root: Path, n_train: int = 24, n_dev: int = 8, seed: int = 0, cv: bool = False) -> Path:
    data = root / "normalised"
    rng = np.random.default_rng(seed)
    if cv:
        recs = [synthetic_sample(rng, f"tv{i:03d}", "trainval", fold=i % 3) for i in range(n_train + n_dev)]
        write_keypoints(data / "trainval.parquet", recs, LAYOUT, {"stage": "normalised"})
    else:
        write_keypoints(data / "train.parquet", [synthetic_sample(rng, f"tr{i:03d}", "train") for i in range(n_train)], LAYOUT, {"stage": "normalised"})
        write_keypoints(data / "dev.parquet", [synthetic_sample(rng, f"dv{i:03d}", "dev") for i in range(n_dev)], LAYOUT, {"stage": "normalised"})
    write_keypoints(data / "test.parquet", [synthetic_sample(rng, f"te{i:03d}", "test") for i in range(4)], LAYOUT, {"stage": "normalised"})
    return data


def write_tiny_vocab(root: Path) -> Path:
    from hatl.vocab import TextNormalisation, VocabConfig, build_gloss_vocab, build_text_vocab

    vdir = root / "vocab"
    vdir.mkdir(parents=True, exist_ok=True)
    build_gloss_vocab([" ".join(GLOSSES)]).save(vdir / "gloss.json")
    texts = [" ".join(WORDS.values())]
    build_text_vocab(texts, TextNormalisation(), VocabConfig()).save(vdir / "text.json")
    return vdir


def write_tiny_backbone(root: Path, base_channels: int = 6) -> Path:
    from hatl.io import atomic_path
    from hatl.models.checkpoint import FORMAT
    from hatl.models.graph import mediapipe_graph
    from hatl.models.stgcnpp import STGCNPP, STGCNPPConfig

    torch.manual_seed(7)
    graph = mediapipe_graph(LAYOUT)
    model = STGCNPP(graph.adjacency(), STGCNPPConfig(base_channels=base_channels))
    path = root / "backbone" / "stgcnpp.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": FORMAT, "config": model.config.to_dict(), "graph": graph.to_dict(), "layout": LAYOUT.to_dict(),
            "state_dict": model.state_dict(), "report": {}}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)
    return path


def tiny_config(root: Path, training: dict | None = None) -> tuple[Path, dict]:
    """A validated config (written to root/config.yaml) with dataset 'tiny' and tiny model / schedule."""
    with open(REPO_ROOT / "config" / "config.yaml", encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    cfg["datasets"] = {"tiny": {"adapter": "generic", "root": str(root), "text": {"lowercase": True, "strip_punctuation": True}}}
    cfg["model"] = copy.deepcopy(TINY_MODEL)
    cfg["training"] = copy.deepcopy(training if training is not None else TINY_TRAINING)
    cfg.setdefault("demo", {})["overrides"] = {}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path, load_config(path)


def tiny_run_inputs(root: Path, training: dict | None = None, cv: bool = False) -> dict:
    data = write_tiny_dataset(root, cv=cv)
    return {"data_dir": data, "vocab_dir": write_tiny_vocab(root), "backbone": write_tiny_backbone(root),
            "config_path": tiny_config(root, training)[0], "config": tiny_config(root, training)[1]}


# ---------------------------------------------------------------------------------------------- tests
def test_epoch_batches_are_a_function_of_seed_and_epoch():
    lengths = list(np.random.default_rng(1).integers(5, 60, 50))
    a = D.epoch_batches(lengths, 4, seed=3, epoch=2, pool_batches=3)
    assert a == D.epoch_batches(lengths, 4, seed=3, epoch=2, pool_batches=3)
    assert a != D.epoch_batches(lengths, 4, seed=3, epoch=3, pool_batches=3)
    assert a != D.epoch_batches(lengths, 4, seed=4, epoch=2, pool_batches=3)
    flat = sorted(i for b in a for i in b)
    assert flat == list(range(50))  # every sample exactly once
    assert all(len(b) <= 4 for b in a)


def test_bucketing_reduces_padding():
    lengths = list(np.random.default_rng(2).integers(5, 200, 256))

    def padding(batches):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in batches)

    bucketed = D.epoch_batches(lengths, 8, 0, 1, bucketing=True, pool_batches=8)
    plain = D.epoch_batches(lengths, 8, 0, 1, bucketing=False)
    assert padding(bucketed) < 0.5 * padding(plain)
    # the number of batches does not depend on the epoch (the LR warm-up length relies on it)
    assert len({len(D.epoch_batches(lengths, 8, 0, e, pool_batches=8)) for e in range(1, 6)}) == 1


def test_collate_matches_the_batch_contract():
    s1 = D.Sample("a", np.ones((3, 2, 3), np.float32), np.array([5, 6]), np.array([4, 7, 8]), "G1 G2", "x y z")
    s2 = D.Sample("b", 2 * np.ones((5, 2, 3), np.float32), np.array([5]), np.array([9]), "G1", "w")
    b = D.collate([s1, s2])
    assert b["keypoints"].shape == (2, 5, 2, 3) and b["keypoints"].dtype == torch.float32
    assert b["frame_mask"].tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert b["gloss"].tolist() == [[5, 6], [5, 0]] and b["gloss_lengths"].tolist() == [2, 1]
    assert b["text_in"].tolist() == [[D.BOS, 4, 7, 8], [D.BOS, 9, 0, 0]]
    assert b["text_out"].tolist() == [[4, 7, 8, D.EOS], [9, D.EOS, 0, 0]]
    assert b["sample_ids"] == ["a", "b"]
    assert float(b["keypoints"][0, 3:].abs().sum()) == 0.0


def test_load_split_normalises_encodes_and_reports_skips(tmp_path):
    from hatl.vocab import Vocabulary

    vdir = write_tiny_vocab(tmp_path)
    gv, tv = Vocabulary.load(vdir / "gloss.json"), Vocabulary.load(vdir / "text.json")
    rng = np.random.default_rng(0)
    good = synthetic_sample(rng, "ok", "train")
    empty = synthetic_sample(rng, "notext", "train")
    empty.extra["text"] = ""
    path = tmp_path / "train.parquet"
    write_keypoints(path, [good, empty], LAYOUT, {"stage": "normalised"})
    split = D.load_split(D.SplitSource("train", path), gv, tv, need_gloss=True)
    assert [s.sample_id for s in split.samples] == ["ok"]
    assert split.skipped == [{"record": "notext", "reason": "empty text (the task needs a translation target)"}]
    s = split.samples[0]
    assert s.text == s.text.lower() and "." not in s.text
    assert tv.decode(s.text_ids.tolist()) == s.text
    assert gv.decode(s.gloss_ids.tolist()) == s.gloss


def test_fold_sources_select_rows(tmp_path):
    from hatl.vocab import Vocabulary

    data = write_tiny_dataset(tmp_path, n_train=12, n_dev=3, cv=True)
    vdir = write_tiny_vocab(tmp_path)
    gv, tv = Vocabulary.load(vdir / "gloss.json"), Vocabulary.load(vdir / "text.json")
    src = D.split_sources(data, "fold1")
    train = D.load_split(src["train"], gv, tv)
    dev = D.load_split(src["dev"], gv, tv)
    assert {int(s.sample_id[2:]) % 3 for s in dev.samples} == {1}
    assert {int(s.sample_id[2:]) % 3 for s in train.samples} == {0, 2}
    assert len(train.samples) + len(dev.samples) == 15
    with pytest.raises(InputError, match="fold must be"):
        D.split_sources(data, "fifth")


def test_missing_columns_and_files_are_input_errors(tmp_path):
    rec = synthetic_sample(np.random.default_rng(0), "x", "train")
    rec.extra = {}
    path = tmp_path / "train.parquet"
    write_keypoints(path, [rec], LAYOUT, {"stage": "keypoints"})
    with pytest.raises(InputError, match=r"missing column"):
        D.load_split(D.SplitSource("train", path), None, None)
    with pytest.raises(InputError, match="does not exist"):
        D.load_split(D.SplitSource("dev", tmp_path / "nope.parquet"), None, None)


@pytest.mark.parametrize("bad", [np.nan, -np.inf])
def test_non_finite_landmarks_are_refused_naming_file_and_sample(tmp_path, bad):
    rng = np.random.default_rng(0)
    good, broken = synthetic_sample(rng, "ok", "train"), synthetic_sample(rng, "broken", "train")
    broken.landmarks[1, 2, 1] = bad
    path = tmp_path / "train.parquet"
    write_keypoints(path, [good, broken], LAYOUT, {"stage": "normalised"})
    with pytest.raises(InputError, match=r"train\.parquet \[broken\]: landmarks contain NaN or infinite values"):
        D.load_split(D.SplitSource("train", path), None, None)


def test_duplicate_sample_id_in_a_split_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "dev.parquet"
    write_keypoints(path, [synthetic_sample(rng, "a", "dev"), synthetic_sample(rng, "a", "dev")], LAYOUT,
                    {"stage": "normalised"})
    with pytest.raises(InputError, match=r"dev\.parquet \[a\]: duplicate sample_id"):
        D.load_split(D.SplitSource("dev", path), None, None)
