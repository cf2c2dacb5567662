"""Settings from environment variables, read one way in every tier.

A msgspec struct is the single description of a tier's settings: field names give the variable
names (`PREFIX + FIELD.upper()`, or a name given in `names`), annotations and `msgspec.Meta`
give types and ranges, `__post_init__` checks what spans fields. `read_env` converts each
variable by its field's type and reports a bad one in one line that names it; a variable with
the tier's prefix that no field reads is rejected, so a typo cannot silently leave a default.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

T = TypeVar("T", bound=msgspec.Struct)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """A setting is malformed, out of range or unknown; the message is one line for a person."""


def env_names(cls: type[msgspec.Struct], names: Mapping[str, str] | None = None) -> dict[str, str]:
    """field -> variable suffix (after the prefix) for every field of `cls`."""
    names = names or {}
    return {f: names.get(f, f.upper()) for f in cls.__struct_fields__}


def reject_unknown(env: Mapping[str, str], prefix: str, known: Collection[str]) -> None:
    """Raise SettingsError for a `prefix*` variable whose suffix is not in `known`."""
    for name in sorted(env):
        if name.startswith(prefix) and name[len(prefix) :] not in known:
            close = difflib.get_close_matches(name[len(prefix) :], list(known), n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise SettingsError(f"unknown setting {name}{hint}")


def read_env(
    cls: type[T],
    env: Mapping[str, str],
    prefix: str,
    *,
    names: Mapping[str, str] | None = None,
    skip: Collection[str] = (),
    verbatim: Collection[str] = (),
    **given: Any,
) -> T:
    """Build `cls` from the variables `prefix + name`; an unset or empty variable keeps the
    default. `skip`: fields not read here (nested structs passed in `given`); `verbatim`:
    fields whose value is not stripped (secrets whose stray spaces a check should see)."""
    variables = env_names(cls, names)
    fields = {f.name: f.type for f in mi.type_info(cls).fields}  # type: ignore[attr-defined]
    values: dict[str, Any] = dict(given)
    for field, suffix in variables.items():
        raw = env.get(prefix + suffix)
        if field in skip or raw is None or raw.strip() == "":
            continue
        value = raw if field in verbatim else raw.strip()
        values[field] = _convert(prefix + suffix, value, fields[field])
    try:
        return msgspec.convert(values, cls, from_attributes=False)
    except (msgspec.ValidationError, ValueError, TypeError) as exc:
        raise SettingsError(_one_line(str(exc), prefix, variables)) from None


def _convert(name: str, raw: str, kind: mi.Type) -> Any:
    if isinstance(kind, mi.UnionType):  # `X | None`: a set variable is an X
        kind = next(t for t in kind.types if not isinstance(t, mi.NoneType))
    if isinstance(kind, mi.BoolType):
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise SettingsError(f"{name}={raw!r} is not a boolean (true or false)")
    if isinstance(kind, mi.IntType | mi.FloatType):
        number = int if isinstance(kind, mi.IntType) else float
        try:
            value = number(raw)
        except ValueError:
            noun = "an integer" if number is int else "a number"
            raise SettingsError(f"{name}={raw!r} is not {noun}") from None
        _check_range(name, value, kind)
        return value
    if isinstance(kind, mi.LiteralType):
        if raw.lower() not in kind.values:
            choices = ", ".join(str(v) for v in kind.values)
            raise SettingsError(f"{name}={raw!r} must be one of {choices}")
        return raw.lower()
    if isinstance(kind, mi.VarTupleType | mi.ListType):
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _check_range(name: str, value: float, kind: mi.IntType | mi.FloatType) -> None:
    low = kind.ge if kind.ge is not None else kind.gt
    high = kind.le if kind.le is not None else kind.lt
    ok = (
        (kind.ge is None or value >= kind.ge)
        and (kind.gt is None or value > kind.gt)
        and (kind.le is None or value <= kind.le)
        and (kind.lt is None or value < kind.lt)
    )
    if ok:
        return
    if low is not None and high is not None:
        left = "[" if kind.ge is not None else "("
        right = "]" if kind.le is not None else ")"
        raise SettingsError(f"{name}={value} is out of range {left}{low}, {high}{right}")
    bound = f">= {kind.ge}" if kind.ge is not None else f"> {kind.gt}"
    if low is None:
        bound = f"<= {kind.le}" if kind.le is not None else f"< {kind.lt}"
    raise SettingsError(f"{name}={value} is out of range: must be {bound}")


def _one_line(message: str, prefix: str, variables: Mapping[str, str]) -> str:
    """msgspec says "... - at `$.field`", a __post_init__ says "field: ...": name the variable."""
    text, _, where = message.partition(" - at `$")
    field = where.lstrip(".").rstrip("`").split(".")[0].split("[")[0]
    if field not in variables:
        field, _, rest = text.partition(": ")
        text = rest if field in variables else text
    if field in variables:
        return " ".join(f"{prefix}{variables[field]}: {text}".split())
    return " ".join(message.split())
