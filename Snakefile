# hatl: Hierarchical Adaptive Transfer Learning for sign language translation.
# Run from the repository root, e.g. `snakemake results/table5.csv --cores all`.
# All logic lives in the `hatl` package; the rules below only call its command-line entry points.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from hatl.config import apply_command_line, validate_config
from hatl.errors import ConfigError
from hatl.experiment import STRATEGIES, TASKS, TRANSLATORS

min_version("9.0")


configfile: "config/config.yaml"


# The package's validator first: it types `--config KEY='{...}'` values, drops datasets an overlay set
# to null, fills the schema's defaults (Snakemake's own filling cannot descend into keys that may be null,
# such as cross_validation) and names a bad key in one line, where Snakemake's would print the whole schema
# and config. Snakemake's validate then sees a valid config.
try:
    validate_config(apply_command_line(config, workflow.config_settings.config))
except ConfigError as err:
    raise WorkflowError(str(err)) from None
validate(config, "workflow/schemas/config.schema.yaml", set_default=False)


report: "workflow/report/workflow.rst"


wildcard_constraints:
    dataset=r"[A-Za-z0-9_\-]+",
    source=r"isl_kinect",
    shard=r"\d+",
    model="|".join(TRANSLATORS),
    task="|".join(TASKS),
    strategy="|".join(STRATEGIES),
    fold=r"main|fold\d+",
    seed=r"seed\d+",
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
