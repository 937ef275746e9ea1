"""ConfigError and the explanations of schema errors: what would be valid, "did you mean".

Kept apart from ``dfdetect.config`` so that the modules that only raise or explain a config error
(batch discovery in ``dfdetect.sources``, the trainer's command line) need none of its checks.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

from dfdetect.layout import NAME_RULE


class ConfigError(ValueError):
    """A config value that cannot work; the message starts with the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config key '{key}': {message}")
        self.key = key


def _schema_types(schema: Mapping[str, Any]) -> set[str]:
    types = schema.get("type", ())
    return {types} if isinstance(types, str) else set(types)


def _number_from_text(config: dict[str, Any], error: Any) -> bool:
    """Replace a number written as text (``'1e-3'``) where the schema wants a number; True if done."""
    if error.validator != "type" or "number" not in _schema_types(error.schema) or not isinstance(error.instance, str):
        return False
    try:
        value = float(error.instance)
    except ValueError:
        return False
    *parents, last = error.absolute_path
    container: Any = config
    for part in parents:
        container = container[part]
    container[last] = value
    return True


# Letters typed for the digits they look like: "EfficientNetBO" means EfficientNetB0.
_LOOKALIKES = str.maketrans("oil", "011")


def did_you_mean(name: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the choices closest to ``name`` (difflib), or ``""``.

    A choice that differs only in case, or in a letter typed for a look-alike digit, comes alone."""
    choices = list(choices)

    def folded(text: Any) -> str:
        return str(text).lower().translate(_LOOKALIKES)

    by_folded = {folded(choice): choice for choice in choices}
    close = [by_folded[folded(name)]] if folded(name) in by_folded else []
    if not close:
        by_lower = {choice.lower(): choice for choice in choices}
        close = [
            by_lower[match] for match in difflib.get_close_matches(str(name).lower(), list(by_lower), n=3, cutoff=0.6)
        ]
    return f"; did you mean {' or '.join(repr(choice) for choice in close)}?" if close else ""


def explain_error(error: Any) -> tuple[str, str]:
    """(key path, message) of a jsonschema ValidationError, saying what would be valid."""
    path = [str(part) for part in error.absolute_path]
    key = ".".join(path) or "(top level)"
    instance = error.instance
    if "propertyNames" in error.schema_path:  # a model or set name: the one rule for names that become paths
        return f"{key}.{instance}", f"{instance!r} cannot be a name: use {NAME_RULE}"
    if error.validator == "additionalProperties" and isinstance(instance, Mapping):
        known = list(error.schema.get("properties", {}))
        unknown = [name for name in instance if name not in known]
        if unknown and known:
            name = unknown[0]
            return ".".join(
                [*path, str(name)]
            ), f"unknown key{did_you_mean(name, known)} (keys here: {', '.join(known)})"
    if error.validator == "oneOf" and not isinstance(instance, str):
        # the option whose type fits says what is wrong (a number below its minimum, ...)
        fitting = [sub for sub in error.context if sub.validator not in ("type", "enum", "oneOf")]
        if fitting:
            return explain_error(fitting[0])
    allowed = _allowed_values(error)
    if allowed is not None and not isinstance(instance, (Mapping, list)):
        names, kinds = allowed
        listed = ", ".join([*names, *kinds])
        return key, f"{instance!r} is not allowed here{did_you_mean(instance, names)} (allowed: {listed})"
    if error.validator == "type" and isinstance(instance, str):
        wanted = " or ".join(sorted(_schema_types(error.schema)))
        return key, (
            f"{instance!r} is text, but this key takes {wanted} "
            "(write it without quotes; YAML reads 1e3 as text: write 1000)"
        )
    return key, error.message


def _allowed_values(error: Any) -> tuple[list[str], list[str]] | None:
    """(allowed strings, other allowed kinds such as "an integer") of an ``enum`` error, or of a
    ``oneOf`` whose options include an enum; None for other errors."""
    if error.validator == "enum":
        return [str(value) for value in error.validator_value], []
    if error.validator != "oneOf":
        return None
    names = [str(value) for option in error.validator_value for value in option.get("enum", ())]
    kinds = [
        f"a {kind}"
        for option in error.validator_value
        if "enum" not in option
        for kind in sorted(_schema_types(option))
    ]
    return (names, kinds) if names else None
