"""Loading, validating and resolving the pipeline configuration outside Snakemake.

The schema (workflow/schemas/config.schema.yaml) is the single definition of every key and default;
Snakemake validates the same file at parse time. ``effective_config`` gives the view one dataset sees:
for demo datasets the ``demo.overrides`` section is merged over the top level.
"""

from __future__ import annotations

import copy
import functools
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
    return f"config key '{key}': {err.message}"


def validate_config(config: dict[str, Any], schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """Validate ``config`` in place (filling defaults, twice so nested defaults settle) and return it."""
    schema = schema or load_schema()
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


def effective_config(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The config as one dataset sees it: demo datasets get ``demo.overrides`` merged over the top level."""
    if not is_demo(config, dataset):
        return config
    return deep_merge(config, config.get("demo", {}).get("overrides", {}))
