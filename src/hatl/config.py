"""Loading, validating and resolving the pipeline configuration outside Snakemake.

The schema (workflow/schemas/config.schema.yaml) is the single definition of every key and default;
Snakemake validates the same file at parse time. ``effective_config`` gives the view one dataset sees:
for demo datasets the ``demo.overrides`` section is merged over the top level. ``read_settings`` picks the
values a command declares it reads (``hatl.cli.CONFIG_READS``) out of that view, so rules/common.smk can key
each job's reruns on exactly them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from hatl.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _with_defaults(validator_class):  # the documented jsonschema recipe for filling defaults
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


# libyaml's loader when present: the schema is read by every command, and the pure-Python one takes ~1 s.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.lru_cache(maxsize=4)
def _schema_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return yaml.load(_schema_text(Path(path)), Loader=_Loader)


def _describe(err: jsonschema.ValidationError) -> str:
    key = ".".join(str(p) for p in err.absolute_path) or "<top level>"
    message = err.message
    if err.validator == "additionalProperties" and err.schema.get("properties"):
        message += f"; allowed here: {', '.join(sorted(err.schema['properties']))}"
    elif err.validator == "type" and not isinstance(err.instance, dict) and "object" in _as_list(err.validator_value):
        message += (f"; a nested value on the command line needs YAML braces with the full path, e.g. "
                    f"--config '{key.split('.')[0]}={{...}}', or an overlay file given with --configfile")
    return f"config key '{key}': {message}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def drop_removed_datasets(config: dict[str, Any]) -> dict[str, Any]:
    """Remove the datasets an overlay set to null (``datasets: {isharah: null}``), in place.

    Snakemake merges ``--configfile`` overlays key by key, so an overlay cannot delete a dataset that
    config/config.yaml defines; null is the documented way to say "not this one"."""
    datasets = config.get("datasets")
    if not isinstance(datasets, dict):
        return config
    removed = [name for name, section in datasets.items() if section is None]
    for name in removed:
        del datasets[name]
    if removed and not datasets:
        raise ConfigError(f"config key 'datasets': every dataset was removed (set to null: {', '.join(removed)}); "
                          "at least one must remain")
    return config


def validate_config(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults, twice so nested defaults settle) and return it.
    Datasets set to null are removed first (an overlay's way to drop one)."""
    schema = schema or load_schema()
    drop_removed_datasets(config)
    validator_cls = _with_defaults(jsonschema.Draft202012Validator)
    for _ in range(2):
        errors = sorted(validator_cls(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
        if errors:
            raise ConfigError("; ".join(_describe(e) for e in errors))
    _check_references(config)
    return config


def _check_references(config: dict[str, Any]) -> None:
    """Keys that name a dataset must name one of this config's (a schema cannot say so)."""
    source = ((config.get("backbone") or {}).get("pretrain_demo") or {}).get("source")
    datasets = list(config.get("datasets") or {})
    if source is not None and source not in datasets:
        raise ConfigError(f"config key 'backbone.pretrain_demo.source': {source!r} is not a dataset of this config ({', '.join(datasets)})")


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            config = yaml.load(fh, Loader=_Loader) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: config file does not exist") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    try:
        return validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def dataset_config(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    try:
        return config["datasets"][dataset]
    except KeyError as err:
        known = ", ".join(config.get("datasets", {}))
        raise ConfigError(f"dataset '{dataset}' is not in the config (known: {known})") from err


def is_demo(config: dict[str, Any], dataset: str) -> bool:
    return dataset_config(config, dataset)["adapter"] == "demo"


def pretraining_source(config: dict[str, Any]) -> str:
    """The dataset whose training rows ``hatl pretrain-demo`` reads: ``backbone.pretrain_demo.source``, else
    the first demo dataset, else the first dataset."""
    source = ((config.get("backbone") or {}).get("pretrain_demo") or {}).get("source")
    if source is not None:
        return str(source)  # validate_config has checked that it names a dataset
    datasets = list(config.get("datasets") or {})
    demos = [name for name in datasets if is_demo(config, name)]
    return (demos or datasets)[0]


def _own_view(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The top level, or for demo datasets ``demo.overrides`` merged over it. A demo dataset keeps its own
    backbone source: a checkpoint named at the top level is sized for real data (released pyskl models are
    base_channels 64, the demo's overrides 8), so demo datasets take ``backbone.checkpoint``/``sha256`` only
    from ``demo.overrides.backbone`` (null: the demo pretraining output)."""
    if not is_demo(config, dataset):
        return config
    overrides = config.get("demo", {}).get("overrides", {}) or {}
    view = deep_merge(config, overrides)
    own_backbone = overrides.get("backbone") or {}
    view.setdefault("backbone", {})
    for key in ("checkpoint", "sha256"):
        view["backbone"][key] = own_backbone.get(key)
    return view


def effective_config(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The config as one dataset sees it: demo datasets get ``demo.overrides`` merged over the top level
    (but keep their own backbone source, see ``_own_view``). A dataset whose backbone is the demo pretraining
    output records the pretraining settings that output was built with (the source dataset's view), not its
    own, which no job of its reads."""
    view = _own_view(config, dataset)
    if (view.get("backbone") or {}).get("checkpoint"):
        return view
    source = pretraining_source(config)
    if source == dataset:
        return view
    used = (_own_view(config, source).get("backbone") or {}).get("pretrain_demo")
    if used == view["backbone"].get("pretrain_demo"):
        return view
    return {**view, "backbone": {**view["backbone"], "pretrain_demo": copy.deepcopy(used)}}


# ------------------------------------------------------------------------------------- what a command reads
# Derived values a command reads instead of a raw key: `dataset.tasks:needs` is what the tasks require of
# the data (video, gloss, text), so adding a task that needs nothing new reruns no job that checks them.
def _task_needs(tasks: Any) -> list[str]:
    from hatl.experiment import task_needs

    return sorted(task_needs(tasks or []))


FACETS: dict[str, Callable[[Any], Any]] = {"needs": _task_needs}


def _lookup(section: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(section, dict):
            return None
        section = section.get(part)
    return section


# Keys that span an experiment axis rather than set a job's behaviour: each job sees its own value through
# a wildcard (a train job's seed is its seed<N> folder), so they are left out of the `settings` a job's
# rerun depends on (adding a fourth seed must not rerun the first three).
AXIS_KEYS: tuple[tuple[str, ...], ...] = (("training", "seeds"),)


def training_seeds(config: dict[str, Any]) -> list[int]:
    """The training seeds of a validated config: ``training.seeds``, or the top-level ``seed`` alone."""
    seeds = (config.get("training") or {}).get("seeds")
    return [int(s) for s in seeds] if seeds else [int(config.get("seed", 1234))]


def _without_axis_keys(path: list[str], value: Any) -> Any:
    """``value`` (found at ``path``) with the AXIS_KEYS below it removed."""
    for axis in AXIS_KEYS:
        if len(axis) > len(path) and tuple(path) == axis[: len(path)] and isinstance(value, dict):
            value = copy.deepcopy(value)
            node = value
            for part in axis[len(path):-1]:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(axis[-1], None)
    return value


def read_settings(config: dict[str, Any], reads: tuple[str, ...], dataset: str | None = None) -> dict[str, Any]:
    """The values of the keys in ``reads`` (one command's declaration in ``hatl.cli.CONFIG_READS``) as
    ``dataset`` sees the config. A key is a dotted path; ``dataset.KEY`` is KEY of the job's own dataset,
    ``datasets.*.KEY`` KEY of every dataset, and a ``:FACET`` suffix (see ``FACETS``) derives a value from
    the key. Returns {key as written (with * expanded): value}; absent keys are None."""
    view = config if dataset is None else effective_config(config, dataset)
    out: dict[str, Any] = {}
    for read in reads:
        path, _, facet = read.partition(":")
        parts = path.split(".")
        if parts[0] == "dataset":
            if dataset is None:
                raise ConfigError(f"config read '{read}' names the job's dataset, but no dataset was given")
            targets = {read: ["datasets", dataset, *parts[1:]]}
        elif parts[:2] == ["datasets", "*"]:
            targets = {f"datasets.{name}.{'.'.join(parts[2:])}" + (f":{facet}" if facet else ""):
                       ["datasets", name, *parts[2:]] for name in view.get("datasets") or {}}
        else:
            targets = {read: parts}
        if facet and facet not in FACETS:
            raise ConfigError(f"config read '{read}': unknown facet '{facet}' (known: {', '.join(FACETS)})")
        for key, full in targets.items():
            value = _lookup(view, full)
            value = _without_axis_keys(full, value)
            out[key] = FACETS[facet](value) if facet else value
    return out


# ------------------------------------------------------------------------------------- the command line
def _retyped(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _retyped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_retyped(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.load(value, Loader=_Loader)
        except yaml.YAMLError:
            return value
        return value if isinstance(parsed, (dict, list)) else parsed
    return value


def apply_command_line(config: dict[str, Any], command_line: Mapping[str, Any]) -> dict[str, Any]:
    """Give ``snakemake --config KEY='{...}'`` values their YAML types, in place.

    Snakemake reads a mapping or list given on its command line with YAML's BaseLoader, which keeps every
    scalar a string (``--config 'training={max_epochs: 2}'`` would set the string '2'); the same text in
    a config file would be typed. Re-reading those scalars as YAML makes both ways mean the same."""
    for key, value in command_line.items():
        if isinstance(value, (dict, list)):
            typed = _retyped(value)
            current = config.get(key)
            config[key] = deep_merge(current, typed) if isinstance(typed, dict) and isinstance(current, dict) else typed
    return config
