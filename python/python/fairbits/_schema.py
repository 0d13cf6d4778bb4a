"""The estimator's parameters, read from the Rust core's one schema (the same that builds the command
line's flags): names, defaults, types and docs are defined there once. This module turns a schema entry
into a Python default, a docstring entry and the text form the core parses, so a value means the same in
Python, on the command line and in a saved model's ``config.json``."""

from __future__ import annotations

import json
import numbers
from typing import Any, Dict, List, Tuple

import numpy as np

from . import _native

_SCHEMA = json.loads(_native.schema_json())


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type (a subclass of both ``ValueError`` and ``TypeError``, as
    scikit-learn's own). Out-of-range values are ``ValueError`` from the core, naming the parameter."""

#: Every parameter of the core, by its library name.
PARAMS: Dict[str, Dict[str, Any]] = {d["name"]: d for d in _SCHEMA["params"]}

#: The values each preset sets, by library name (text form).
PRESETS: Dict[str, Dict[str, str]] = _SCHEMA["presets"]

#: The estimator's constructor parameters, in the schema's order.
CONSTRUCTOR: List[Dict[str, Any]] = [d for d in _SCHEMA["params"] if d["python"]]

#: The parameters that make a model (architecture, training, evaluation, seed): sent to the core's fit.
_MODEL_GROUPS = ("model", "training", "evaluation", "certified fairness")

_SET_BY_PRESET = {name for values in PRESETS.values() for name in values}


def _parse(d: Dict[str, Any], text: str) -> Any:
    kind = d["type"]
    if kind == "number":
        return float(text)
    if kind == "integer":
        return int(text)
    if kind == "switch":
        return text == "true"
    if kind.startswith("list of"):
        items = [i for i in text.split(",") if i]
        if not items:
            return None
        cast = int if kind == "list of integers" else float if kind == "list of numbers" else str
        return tuple(cast(i) for i in items)
    return text


def python_default(d: Dict[str, Any]) -> Any:
    """The default in the estimator's signature. ``None`` where the core decides: the default depends on
    the data's kind or on the preset, or there is none (the docstring says what it is)."""
    if d["python_default"] is not None:
        return _parse(d, d["python_default"])
    text = d["default"]
    if text is None or text == "none" or d["name"] in _SET_BY_PRESET or d["default_images"] != text:
        return None
    return _parse(d, text)


def _type_words(d: Dict[str, Any]) -> str:
    kind = d["type"]
    if d["name"] == "sensitive":  # Python also takes several columns (intersectional groups).
        return "str or list of str"
    if d["choices"]:
        return "{" + ", ".join(f'"{c}"' for c in d["choices"]) + "}"
    return {
        "number": "float",
        "integer": "int",
        "switch": "bool",
        "list of integers": "tuple of int",
        "list of numbers": "tuple of float",
        "list of names": "list of str",
        "penalty": "str",
    }.get(kind, "object" if d["name"] == "positive" else "str")


# Why the estimator's default differs from the command line's, where it does.
_WHY_PYTHON_DEFAULT = {
    "preset": ": the estimator is fair unless asked otherwise",
    "missing": (
        ": a scikit-learn estimator refuses missing values unless asked to handle them (a file's rows "
        "with missing cells are dropped and counted)"
    ),
}


def docstring_entry(d: Dict[str, Any]) -> str:
    """The numpydoc entry of a constructor parameter."""
    default = python_default(d)
    shown = f'"{default}"' if isinstance(default, str) else repr(default)
    lines = [f"{d['python']} : {_type_words(d)}, default={shown}", "    " + d["meaning"]]
    if d["python_default"] is not None:
        why = _WHY_PYTHON_DEFAULT.get(d["name"], "")
        lines.append(f"    Python's default ({d['python_default']}) differs from the command line's ({d['default']}){why}.")
    words = d["default"]
    if words is not None and (default is None or d["default_images"] != words):
        lines.append(f"    Default: {words}" + (f" (images: {d['default_images']})" if d["default_images"] != words else "") + ".")
    for preset, values in PRESETS.items():
        if d["name"] in values:
            lines.append(f'    With ``preset="{preset}"``: {values[d["name"]]}.')
    if d["cli"]:
        lines.append(f"    Command line: ``--{d['cli']}``.")
    return "\n".join(lines)


def to_text(d: Dict[str, Any], value: Any) -> str:
    """``value`` in the text form the core parses; ``TypeError`` for a value of the wrong type (ranges are
    the core's to check, which raises ``ValueError`` naming the parameter)."""
    name, kind = d["python"] or d["name"], d["type"]

    def wrong(what: str) -> InvalidParameterError:
        return InvalidParameterError(f"{name} must be {what}, got {type(value).__name__} {value!r}")

    if kind == "number":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise wrong("a number")
        return repr(float(value))
    if kind == "integer":
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise wrong("an integer")
        if not isinstance(value, numbers.Integral) and float(value) != int(value):
            raise wrong("an integer")
        return str(int(value))
    if kind == "switch":
        if not isinstance(value, (bool, np.bool_)):
            raise wrong("True or False")
        return "true" if value else "false"
    if kind == "list of integers":
        items = [value] if isinstance(value, numbers.Integral) else value
        try:
            ints = [to_text({**d, "type": "integer"}, v) for v in items]
        except (TypeError, InvalidParameterError):
            raise wrong("an integer or a sequence of integers") from None
        return ",".join(ints)
    if not isinstance(value, str):
        raise wrong("a string")
    return value


def model_texts(values: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The model parameters set (not ``None``) among ``values`` (by Python name), as the core's
    ``(library name, text)`` pairs."""
    out = []
    for d in CONSTRUCTOR:
        if d["group"] in _MODEL_GROUPS and values.get(d["python"]) is not None:
            out.append((d["name"], to_text(d, values[d["python"]])))
    return out


def from_config(config: Dict[str, Any]) -> Dict[str, Any]:
    """The constructor parameters a saved model's ``config.json`` records (by Python name)."""
    out = {}
    for d in CONSTRUCTOR:
        if not d["config"]:
            continue
        value: Any = config
        for key in d["config"].split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            out[d["python"]] = tuple(value) if isinstance(value, list) else value
    return out
