"""Numbers the HATL paper reports, transcribed from its Tables 4-7 (papers/hatl.txt), for the tables' "reported" rows.

Exception: the HATL paper has no Gloss2Text results, so Table 5's Gloss2Text literature rows are transcribed from
VL-Transfer (Chen et al., CVPR 2022, papers/vl-transfer.txt), its Table 4: the same mBART-architecture
translator from scratch and with CC25 pretraining. They are shown only when Gloss2Text runs exist.

Each row: task, display name, model/strategy (None for literature rows), dev and test values as
(BLEU-1, BLEU-2, BLEU-3, BLEU-4, ROUGE); None where the paper prints "-". All values are the paper's
(real data). Literature rows are the paper's citations of other systems, kept with its reference numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hatl.experiment import STRATEGY_NAMES, TRANSLATOR_NAMES

Values = tuple[float | None, float | None, float | None, float | None, float | None]
METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "rouge")


@dataclass(frozen=True)
class PaperRow:
    task: str
    name: str
    model: str | None
    strategy: str | None
    dev: Values
    test: Values

    @property
    def literature(self) -> bool:
        return self.model is None


def _lit(task: str, name: str, dev: Values, test: Values) -> PaperRow:
    return PaperRow(task, name, None, None, dev, test)


def _ours(task: str, model: str, strategy: str, dev: Values, test: Values) -> PaperRow:
    return PaperRow(task, f"{TRANSLATOR_NAMES[model]} ({STRATEGY_NAMES[strategy]})", model, strategy, dev, test)


# Tables 5 (PHOENIX14T), 6 (Isharah), 7 (MedASL), in the paper's row order.
PAPER_ROWS: dict[int, tuple[PaperRow, ...]] = {
    5: (
        _lit("sign2gloss2text", "NSLT [3]", (42.9, 30.3, 23.0, 18.4, 44.1), (43.3, 30.4, 22.8, 18.1, 43.8)),
        _lit("sign2gloss2text", "Multi-View SLT [21]", (None, None, None, None, None), (46.1, 32.8, 25.0, 20.1, None)),
        _lit("sign2gloss2text", "Joint-SLRT [4]", (47.3, 34.4, 27.1, 22.4, None), (46.6, 33.7, 26.2, 21.3, None)),
        _lit("sign2gloss2text", "HST-GNN [20]", (46.1, 33.4, 27.5, 22.6, None), (45.2, 34.7, 27.1, 22.3, None)),
        _lit("sign2gloss2text", "SimulSLT [36]", (47.8, 35.3, 27.9, 22.9, 49.2), (48.2, 35.6, 28.0, 23.1, 49.2)),
        _lit("sign2gloss2text", "STM-Net [40]", (47.6, 36.4, 29.2, 24.1, 48.2), (47.0, 36.1, 28.7, 23.7, 46.7)),
        _lit("sign2gloss2text", "STMC-Transformer [37]", (46.8, 35.0, 27.8, 23.1, 47.3), (47.5, 35.9, 28.6, 23.8, 47.3)),
        _lit("sign2gloss2text", "VL-Transfer [6]", (50.4, 37.5, 29.7, 24.6, 50.2), (49.9, 37.3, 29.7, 24.6, 49.6)),
        _lit("sign2gloss2text", "SLTUNET [38]", (None, None, None, 25.4, 49.6), (50.4, 39.2, 31.4, 26.0, 50.0)),
        _lit("sign2gloss2text", "Two Stream-SLT [7]", (52.4, 39.8, 31.9, 26.5, 52.0), (52.1, 39.8, 32.0, 26.7, 51.6)),
        _ours("sign2gloss2text", "transformer", "classical", (42.7, 31.5, 24.4, 19.8, 42.2), (41.3, 30.3, 23.3, 18.8, 41.7)),
        _ours("sign2gloss2text", "transformer", "full", (43.6, 32.0, 24.7, 20.0, 43.5), (42.0, 31.0, 23.8, 19.7, 43.2)),
        _ours("sign2gloss2text", "transformer", "hatl", (68.0, 49.1, 36.6, 26.8, 49.8), (67.7, 48.2, 35.5, 25.7, 50.5)),
        _ours("sign2gloss2text", "adat", "classical", (42.2, 31.1, 24.3, 19.9, 42.4), (39.7, 29.3, 22.8, 18.5, 40.6)),
        _ours("sign2gloss2text", "adat", "full", (42.8, 31.2, 24.2, 20.4, 42.8), (41.0, 30.6, 23.6, 20.2, 43.5)),
        _ours("sign2gloss2text", "adat", "hatl", (70.7, 51.0, 38.1, 35.1, 54.5), (68.0, 48.4, 35.6, 30.7, 52.8)),
        _lit("sign2text", "NSLT [3]", (31.9, 19.1, 13.2, 9.9, 31.8), (32.2, 19.9, 12.8, 9.6, 31.8)),
        _lit("sign2text", "Multi-View SLT [21]", (None, None, None, None, None), (34.4, 21.0, 14.6, 11.2, None)),
        _lit("sign2text", "SimulSLT [36]", (None, None, None, None, None), (None, None, None, 12.3, None)),
        _lit("sign2text", "SignNet II [5]", (None, None, None, None, None), (39.2, 24.6, 16.9, 12.3, None)),
        _lit("sign2text", "MC-SLT [19]", (None, None, None, None, None), (43.7, None, None, 17.0, 43.4)),
        _lit("sign2text", "Joint-SLRT [4]", (45.5, 32.6, 25.3, 20.7, None), (45.3, 32.3, 24.8, 20.2, None)),
        _lit("sign2text", "STMC-Transformer [37]", (50.3, 37.6, 29.8, 24.7, 48.7), (50.6, 38.4, 30.6, 25.4, 48.8)),
        _lit("sign2text", "VL-Transfer [6]", (54.0, 41.1, 33.1, 27.6, 53.1), (54.0, 41.8, 33.8, 28.4, 52.7)),
        _lit("sign2text", "SLTUNET [38]", (None, None, None, 27.9, 52.2), (52.9, 41.8, 34.0, 28.5, 52.1)),
        _lit("sign2text", "Two Stream-SLT [7]", (54.3, 42.0, 34.2, 28.7, 54.1), (54.9, 42.4, 34.5, 29.0, 53.5)),
        _ours("sign2text", "transformer", "classical", (42.7, 31.1, 24.2, 16.2, 36.4), (41.0, 29.9, 23.1, 16.4, 36.8)),
        _ours("sign2text", "transformer", "full", (42.9, 31.4, 24.4, 17.7, 37.3), (41.2, 31.2, 23.4, 17.5, 37.1)),
        _ours("sign2text", "transformer", "hatl", (45.5, 31.7, 22.8, 19.8, 43.9), (45.1, 31.5, 22.5, 18.6, 42.6)),
        _ours("sign2text", "adat", "classical", (37.0, 28.3, 22.7, 18.0, 42.5), (36.0, 27.6, 21.8, 17.0, 41.1)),
        _ours("sign2text", "adat", "full", (38.3, 29.2, 23.5, 19.7, 44.1), (37.0, 28.0, 22.4, 18.6, 42.8)),
        _ours("sign2text", "adat", "hatl", (60.5, 50.8, 38.0, 28.6, 54.6), (59.5, 48.2, 35.4, 29.4, 54.2)),
        # VL-Transfer Table 4 (PHOENIX14T Gloss2Text); ROUGE is its ROUGE-L column
        _lit("gloss2text", "VL-Transfer [6], mBART from scratch", (48.42, 35.22, 27.55, 22.71, 46.56),
             (48.16, 35.32, 27.63, 22.57, 47.03)),
        _lit("gloss2text", "VL-Transfer [6], mBART CC25-pretrained", (54.01, 41.41, 33.50, 28.19, 53.79),
             (52.65, 39.99, 32.07, 26.70, 52.54)),
    ),
    6: (
        _lit("sign2gloss2text", "VL-Transfer [6]", (71.8, 70.8, 68.0, 66.1, 72.3), (51.3, 49.9, 48.3, 45.4, 52.6)),
        _ours("sign2gloss2text", "transformer", "classical", (57.5, 47.3, 43.2, 40.9, 55.8), (64.1, 52.1, 45.7, 40.0, 45.2)),
        _ours("sign2gloss2text", "transformer", "full", (57.9, 47.8, 43.4, 41.4, 60.0), (63.7, 52.4, 46.5, 41.5, 45.9)),
        _ours("sign2gloss2text", "transformer", "hatl", (80.3, 64.3, 54.6, 45.5, 74.8), (88.7, 68.2, 56.3, 45.6, 53.4)),
        _ours("sign2gloss2text", "adat", "classical", (57.5, 47.0, 42.3, 41.7, 56.3), (61.4, 51.4, 44.2, 40.9, 35.2)),
        _ours("sign2gloss2text", "adat", "full", (57.2, 47.4, 41.9, 42.8, 60.1), (63.1, 52.3, 46.1, 42.4, 40.1)),
        _ours("sign2gloss2text", "adat", "hatl", (85.1, 66.2, 55.5, 57.2, 75.3), (90.4, 70.1, 57.6, 52.2, 55.5)),
        _lit("sign2text", "GFSLT-VLP [39]", (68.0, 66.3, 65.3, 64.8, 69.1), (47.8, 45.8, 44.6, 43.4, 49.5)),
        _ours("sign2text", "transformer", "classical", (55.3, 45.6, 41.3, 39.1, 54.1), (61.0, 49.1, 43.1, 38.3, 43.2)),
        _ours("sign2text", "transformer", "full", (55.5, 45.5, 41.4, 39.5, 57.4), (60.5, 49.5, 44.1, 39.1, 44.4)),
        _ours("sign2text", "transformer", "hatl", (76.2, 61.0, 52.1, 43.0, 71.9), (84.1, 65.2, 53.1, 43.3, 51.1)),
        _ours("sign2text", "adat", "classical", (55.1, 44.5, 40.9, 39.2, 54.3), (59.3, 48.2, 41.2, 39.1, 33.3)),
        _ours("sign2text", "adat", "full", (55.0, 44.3, 40.8, 40.0, 58.1), (59.9, 48.7, 44.1, 39.9, 35.8)),
        _ours("sign2text", "adat", "hatl", (82.0, 63.2, 53.1, 55.2, 73.1), (86.3, 66.9, 55.3, 49.5, 53.2)),
    ),
    7: (
        _ours("sign2gloss2text", "transformer", "classical", (51.8, 41.9, 34.8, 28.8, 51.0), (47.9, 38.6, 32.0, 26.3, 50.6)),
        _ours("sign2gloss2text", "transformer", "full", (51.6, 42.6, 36.4, 31.2, 52.5), (50.8, 41.6, 34.8, 29.2, 51.8)),
        _ours("sign2gloss2text", "transformer", "hatl", (81.5, 63.3, 50.8, 39.1, 53.2), (79.1, 60.9, 48.3, 36.8, 51.8)),
        _ours("sign2gloss2text", "adat", "classical", (55.2, 44.7, 37.1, 30.5, 52.0), (50.8, 40.5, 33.3, 27.6, 50.9)),
        _ours("sign2gloss2text", "adat", "full", (54.2, 45.1, 38.4, 32.7, 53.9), (52.7, 43.5, 37.0, 31.4, 53.2)),
        _ours("sign2gloss2text", "adat", "hatl", (77.5, 59.6, 47.6, 43.4, 59.5), (79.2, 59.6, 46.0, 43.2, 59.1)),
        _ours("sign2text", "transformer", "classical", (45.0, 36.5, 30.7, 26.0, 45.6), (45.4, 36.1, 29.9, 24.8, 45.9)),
        _ours("sign2text", "transformer", "full", (52.4, 42.0, 34.7, 26.9, 45.8), (51.3, 40.5, 33.1, 26.1, 46.2)),
        _ours("sign2text", "transformer", "hatl", (72.6, 54.2, 41.8, 28.3, 46.1), (73.3, 55.1, 42.8, 29.1, 47.2)),
        _ours("sign2text", "adat", "classical", (53.0, 35.3, 23.7, 15.6, 26.7), (51.6, 34.5, 23.4, 15.6, 26.0)),
        _ours("sign2text", "adat", "full", (46.8, 38.2, 32.2, 27.3, 47.1), (47.9, 39.2, 33.2, 28.3, 47.8)),
        _ours("sign2text", "adat", "hatl", (50.4, 41.0, 34.4, 29.2, 50.0), (52.7, 43.1, 36.3, 30.5, 51.6)),
    ),
}

# Table 4 (hyperparameters), as printed in the paper: name -> value text.
PAPER_TABLE4: dict[str, str] = {
    "HATL: warmup epochs": "2",
    "HATL: warmup scheduler": "max(200, 0.02 x training steps)",
    "HATL: patience for unfreezing the first layer": "4",
    "HATL: moving average window": "3 epochs",
    "HATL: unfreeze threshold (CTC)": "0.003",
    "HATL: unfreeze threshold (BLEU-4)": "0.002",
    "HATL: unfreeze threshold decay": "x0.95 every 5 epochs",
    "HATL: cooldown after unfreeze": "3 epochs",
    "HATL: early stopping": "5 epochs after cooldown",
    "HATL: optimizer": "AdamW, (0.9, 0.98), eps=1e-8",
    "HATL: backbone learning rate": "1e-5",
    "HATL: layer-wise learning rate decay": "0.1 x (1/2^d)",
    "Translation: encoder layers": "3",
    "Translation: decoder layers": "1",
    "Translation: hidden size": "512",
    "Translation: attention heads": "8",
    "Translation: dropout rate": "0.1",
    "Translation: optimizer": "AdamW, (0.9, 0.98), eps=1e-8",
    "Translation: encoder learning rate": "5e-5",
    "Translation: decoder learning rate": "1e-4",
    "Translation: CTC gloss alignment": "enabled in Sign2Gloss2Text, disabled in Sign2Text (w_CTC = 0)",
    "Decoding: CTC blank bias (Sign2Gloss2Text)": "0.4",
    "Decoding: CTC temperature (Sign2Gloss2Text)": "0.9",
    "Decoding: beam width": "8",
    "Decoding: KenLM language model": "4-gram",
    "Decoding: KenLM weight": "0.7",
}


def rows_for(table: int) -> tuple[PaperRow, ...]:
    if table not in PAPER_ROWS:
        raise KeyError(f"the paper has no results table {table} (tables 5-7)")
    return PAPER_ROWS[table]
