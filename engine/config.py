"""YAML configs with inheritance, checked ``key=value`` overrides, and saving.

A config file may name a parent with ``_base_: other.yaml`` (relative to the file); the
child can only set keys its parent already has, so the root file of the chain is the
schema: every key, its default and (in comments) its meaning. Unknown keys, in a file or
on the command line, raise a ``ConfigError`` that lists the closest valid keys.
"""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

BASE_KEY = "_base_"


class ConfigError(ValueError):
    """A config file or override that does not fit the schema."""


def flatten(cfg: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` → ``{"a.b": 1}`` (leaves only)."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _unknown_key(key: str, known: Iterable[str], where: str) -> ConfigError:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=5, cutoff=0.5)
    leaf = key.rsplit(".", 1)[-1]
    close += [k for k in known if k.rsplit(".", 1)[-1] == leaf and k not in close]
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown config key {key!r} in {where}{hint}")


def _check_type(key: str, default: Any, value: Any, where: str) -> Any:
    """``value`` if it may replace ``default``; ints are accepted where floats are expected."""
    if default is None or value is None:
        return value
    if isinstance(default, bool) or isinstance(value, bool):
        ok = isinstance(default, bool) and isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int)
    elif isinstance(default, list):
        ok = isinstance(value, list)
    elif isinstance(default, Mapping):
        ok = isinstance(value, Mapping)
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ConfigError(
            f"config key {key!r} in {where} expects a {type(default).__name__} (default {default!r}), got {value!r}"
        )
    return value


def merge(base: Mapping[str, Any], update: Mapping[str, Any], where: str, prefix: str = "") -> dict[str, Any]:
    """A deep copy of ``base`` with ``update``'s values; keys not in ``base`` raise ``ConfigError``."""
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if key not in out:
            raise _unknown_key(dotted, flatten(base, prefix).keys() | _sections(base, prefix), where)
        if isinstance(out[key], Mapping) and isinstance(value, Mapping):
            out[key] = merge(out[key], value, where, dotted + ".")
        elif isinstance(out[key], Mapping) and out[key]:
            raise ConfigError(f"config key {dotted!r} in {where} is a section; set its keys ({dotted}.<key>) instead")
        else:
            out[key] = _check_type(dotted, out[key], value, where)
    return out


def _sections(cfg: Mapping[str, Any], prefix: str = "") -> set[str]:
    return {f"{prefix}{k}" for k, v in cfg.items() if isinstance(v, Mapping)}


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """One YAML mapping (``yaml.safe_load``); a clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {os.fspath(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {os.fspath(path)!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {os.fspath(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """The config at ``path`` resolved through its ``_base_`` chain, then ``overrides`` applied."""
    path = Path(path)
    data = read_yaml(path)
    base_name = data.pop(BASE_KEY, None)
    if base_name is not None:
        base = load_config(path.parent / base_name)
        cfg = merge(base, data, where=os.fspath(path))
    else:
        cfg = data
    return apply_overrides(cfg, overrides)


def parse_value(text: str) -> Any:
    """A command-line value: YAML (``1``, ``true``, ``[1, 2]``, ``null``), numbers like ``1e-4``, else a string."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` → ``{"a.b": 1, "c": "x"}``; an item without ``=`` raises ``ConfigError``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must have the form key=value, e.g. train.max_iters=1000")
        out[key.strip()] = parse_value(text)
    return out


def apply_overrides(cfg: Mapping[str, Any], overrides: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with dotted ``key=value`` overrides applied (strings are parsed; a mapping is used as is)."""
    values = overrides if isinstance(overrides, Mapping) else parse_overrides(overrides)
    out = copy.deepcopy(dict(cfg))
    for dotted, value in values.items():
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        out = merge(out, nested, where="the command line")
    return out


def save_config(cfg: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write the resolved config as YAML (readable back with ``load_config``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(cfg), sort_keys=False, default_flow_style=None))
    return path
