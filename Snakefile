# hatl: Hierarchical Adaptive Transfer Learning for sign language translation.
# Run from the repository root, e.g. `snakemake results/table5.csv --cores all`.
# All logic lives in the `hatl` package; the rules below only call its command-line entry points.
from snakemake.utils import min_version, validate

from hatl.config import validate_config

min_version("9.0")


configfile: "config/config.yaml"


# Validate against the schema, then fill its defaults with the package's validator (Snakemake's own
# default filling cannot descend into keys that may be null, such as cross_validation).
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)
validate_config(config)


report: "workflow/report/workflow.rst"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    shard=r"\d+",
    model=r"transformer|adat",
    task=r"sign2text|sign2gloss2text|gloss2text",
    strategy=r"classical|full|hatl",
    fold=r"main|fold\d+",
    split=r"train|dev|test|trainval",
    order=r"\d+",


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/keypoints.smk"
include: "rules/text.smk"
include: "rules/backbone.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/artifacts.smk"


rule all:
    default_target: True
    input:
        all_targets(),
