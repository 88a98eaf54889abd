"""The pretraining table (one downstream run per backbone source) and the random-backbone row's backbone."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from hatl.cli import main
from hatl.models.checkpoint import backbone_source_of, load_backbone

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REFS = {"dev": ["the sun shines", "rain in the north", "the sun shines today"],
        "test": ["rain in the south", "the sun shines", "snow in the north"]}
GLOSSES = {"dev": ["SUN SHINE", "RAIN NORTH", "SUN SHINE TODAY"], "test": ["RAIN SOUTH", "SUN SHINE", "SNOW NORTH"]}


def write_run(root: Path, source: str, hyps: dict[str, list[str]] | None, glosses: dict[str, list[str]],
              model: str = "transformer", task: str = "sign2text_ctc") -> Path:
    """A scored run; ``hyps`` None: a recognition run (sign2gloss), whose decoded rows have no text."""
    run = root / source / "runs" / "demo" / model / task / "full" / "main" / "seed1234"
    run.mkdir(parents=True)
    for split in ("dev", "test"):
        with open(run / f"decoded.{split}.jsonl", "w") as fh:
            for i, (gh, gr) in enumerate(zip(glosses[split], GLOSSES[split])):
                h, r = (None, None) if hyps is None else (hyps[split][i], REFS[split][i])
                fh.write(json.dumps({"id": f"{split}{i}", "hyp": h, "ref": r, "gloss_hyp": gh, "gloss_ref": gr}) + "\n")
    assert main(["score", "--config", str(root / "c.yaml"), "--decoded", str(run / "decoded.dev.jsonl"),
                 str(run / "decoded.test.jsonl"), "--out", str(run / "scores.json")]) == 0
    return run / "scores.json"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "c.yaml").write_text("datasets:\n  demo: {adapter: demo, demo_profile: phoenix14t}\n")
    return tmp_path


def test_table_has_one_row_per_source_and_the_floor(root):
    perfect = write_run(root, "masked", REFS, GLOSSES)
    constant = write_run(root, "none", {s: ["the sun shines"] * 3 for s in REFS}, {s: ["SUN SHINE"] * 3 for s in REFS})
    report = root / "masked.json"
    report.write_text(json.dumps({"held_out": {"windows": 5, "model_mse": 0.0123, "copy_last_frame_mse": 0.0456},
                                  "train_windows": 40}))
    out = root / "table_pretraining.csv"
    code = main(["table-pretraining", "--config", str(root / "c.yaml"), "--scores", f"masked={perfect}",
                 f"none={constant}", "--reports", f"masked={report}", "--out", str(out), "--figure", str(root / "p.png")])
    assert code == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["source"] for r in rows] == ["none", "masked", "floor"]  # the table's fixed source order
    by = {r["source"]: r for r in rows}
    assert float(by["masked"]["test_bleu4"]) == pytest.approx(100.0) and float(by["masked"]["test_wer"]) == 0.0
    assert by["none"]["test_distinct"] == "1" and by["masked"]["test_distinct"] == "3"
    assert "0.0123" in by["masked"]["pretraining"] and "copy-last-frame 0.0456" in by["masked"]["pretraining"]
    # the floor: best constant dev sentence / gloss sequence, here exactly what the "none" run emitted
    assert float(by["floor"]["test_bleu4"]) == pytest.approx(float(by["none"]["test_bleu4"]), abs=1e-3)
    assert float(by["floor"]["test_wer"]) == pytest.approx(float(by["none"]["test_wer"]), abs=1e-3)
    assert "| masked keypoints (pretrain-masked) | 100.00 | 100.00 | 0.00 | 0.00 | 3 / 3 |" in \
        (root / "table_pretraining.md").read_text()
    assert (root / "p.png").stat().st_size > 1000
    assert json.loads((root / "table_pretraining.json").read_text())["runs"]["none"] == str(constant)


def test_recognition_runs_are_judged_on_their_glosses(root):
    """sign2gloss has no text: distinct outputs and the floor come from the gloss sequences, BLEU stays empty."""
    good = write_run(root, "two_stage", None, GLOSSES, task="sign2gloss")
    flat = write_run(root, "demo", None, {s: ["SUN SHINE"] * 3 for s in GLOSSES}, task="sign2gloss")
    out = root / "t.csv"
    assert main(["table-pretraining", "--config", str(root / "c.yaml"), "--scores", f"two_stage={good}",
                 f"demo={flat}", "--out", str(out), "--figure", str(root / "p.png")]) == 0
    by = {r["source"]: r for r in csv.DictReader(open(out))}
    assert list(by) == ["demo", "two_stage", "floor"]
    assert by["two_stage"]["test_distinct"] == "3" and by["demo"]["test_distinct"] == "1"
    assert float(by["two_stage"]["test_wer"]) == 0.0 and by["two_stage"]["test_bleu4"] == ""
    assert float(by["floor"]["test_wer"]) == pytest.approx(float(by["demo"]["test_wer"]))
    assert by["floor"]["test_bleu4"] == "" and "glosses: 'SUN SHINE'" in by["floor"]["pretraining"]
    assert by["two_stage"]["name"].startswith("isl_kinect supervised, then in-domain demo windows")
    assert "BLEU-4: none (a recognition task" in (root / "t.md").read_text()


def test_rows_must_differ_in_the_backbone_only(root, caplog):
    a = write_run(root, "none", REFS, GLOSSES)
    b = write_run(root, "demo", REFS, GLOSSES, model="adat")
    code = main(["table-pretraining", "--config", str(root / "c.yaml"), "--scores", f"none={a}", f"demo={b}",
                 "--out", str(root / "t.csv"), "--figure", str(root / "p.png")])
    assert code == 2 and "the rows must differ in the backbone only" in caplog.text
    assert not (root / "t.csv").exists()


def test_unknown_source_is_refused(root, caplog):
    a = write_run(root, "none", REFS, GLOSSES)
    code = main(["table-pretraining", "--config", str(root / "c.yaml"), "--scores", f"imagenet={a}",
                 "--out", str(root / "t.csv"), "--figure", str(root / "p.png")])
    assert code == 2 and "unknown backbone source 'imagenet'" in caplog.text


def test_random_backbone_is_loadable_and_seeded(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("datasets:\n  demo: {adapter: demo, demo_profile: phoenix14t}\nbackbone: {base_channels: 6}\n"
                   "preprocess: {keypoints: {groups: [pose, left_hand, right_hand]}}\n")
    for name in ("a", "b"):
        assert main(["random-backbone", "--config", str(cfg), "--out", str(tmp_path / f"{name}.pt"),
                     "--report", str(tmp_path / f"{name}.json")]) == 0
    a, b = load_backbone(tmp_path / "a.pt"), load_backbone(tmp_path / "b.pt")
    assert a.graph.num_nodes == 25 + 21 + 21  # upper-body pose (0-24) + two hands
    assert all((a.state_dict()[k] == b.state_dict()[k]).all() for k in a.state_dict())  # same seed, same weights
    report = json.loads((tmp_path / "a.json").read_text())
    assert set(report["counts"]) == {"reinitialised"} and report["source_format"] == "random initialisation"
    assert backbone_source_of(tmp_path / "a.pt").label == "none"  # the row's backbone label: no pretraining
