"""The experiment's fixed vocabulary: its axes, the special token ids, and the names things go by.

Every other module takes these from here, so adding a translator or renaming a dataset is one edit.
"""

from __future__ import annotations

# -- axes: a run is dataset × translator × task × strategy × fold ------------------------------------
TRANSLATORS = ("transformer", "adat")
TASKS = ("sign2text", "sign2gloss2text", "gloss2text")
STRATEGIES = ("classical", "full", "hatl")
TEXT_ONLY_TASKS = ("gloss2text",)  # no keypoints, no backbone
GLOSS_TASKS = ("sign2gloss2text", "gloss2text")  # tasks that read glosses (as targets or as input)

# -- special token ids, the same in every vocabulary (docs/architecture.md) -------------------------
PAD, BOS, EOS, UNK = 0, 1, 2, 3
BLANK = 4  # the gloss vocabulary's CTC blank
