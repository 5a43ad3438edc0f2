"""Reading ``params.yaml`` into :class:`tokenclean.config.Params`: the ``profile`` merged under the
explicit sections, and every validation error turned into one message that says what to change
(an unknown key gets a did-you-mean). ``python -m tokenclean.params_file`` prints the effective params.
"""

from __future__ import annotations

import difflib
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from tokenclean.config import Params


class ParamsError(ValueError):
    """Raised for a params file that does not parse; the message says what to change."""


def _model_of(annotation) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _entries_of(annotation) -> type[BaseModel] | None:
    """The entry model of a mapping of named entries (``rounds``: dict[str, RoundCfg])."""
    args = typing.get_args(annotation)
    return _model_of(args[1]) if typing.get_origin(annotation) is dict and len(args) == 2 else None


def _fields_at(loc: tuple) -> list[str]:
    """Valid keys beside the last part of ``loc`` (for a did-you-mean)."""
    model, parts = Params, list(loc[:-1])
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return []
        if _entries_of(field.annotation) and parts:
            parts.pop(0)  # the entry's name
            model = _entries_of(field.annotation)
        elif _model_of(field.annotation):
            model = _model_of(field.annotation)
        else:
            return []
    return list(model.model_fields)


def _unknown(key: str, model: type[BaseModel], where: str) -> ParamsError:
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    return ParamsError(f"unknown key '{where}{key}'" + (f"; did you mean '{close[0]}'?" if close else ""))


def _merge(model: type[BaseModel], defaults: dict, raw: dict) -> dict:
    """``raw`` over ``defaults``, section by section; a mapping of named entries (rounds) is replaced whole."""
    out = dict(defaults)
    for key, value in raw.items():
        field = model.model_fields.get(key)
        sub = _model_of(field.annotation) if field else None
        out[key] = _merge(sub, out.get(key) or {}, value) if sub and isinstance(value, dict) else value
    return out


def _fill(model: type[BaseModel], target: dict, profile: dict, explicit: dict | None, where: str = "profile.") -> None:
    """Set each value of ``profile`` into ``target`` unless the params file set it (``explicit``)."""
    for key, value in profile.items():
        field = model.model_fields.get(key)
        if field is None:
            raise _unknown(key, model, where)
        sub, entries, given = _model_of(field.annotation), _entries_of(field.annotation), (explicit or {}).get(key)
        if sub and isinstance(value, dict):
            _fill(sub, target.setdefault(key, {}), value, given, f"{where}{key}.")
        elif entries and isinstance(value, dict):
            for name, entry in value.items():
                if name not in target.get(key, {}):
                    raise ParamsError(f"{where}{key}.{name}: there is no '{name}' in {key}; remove it from the profile")
                _fill(entries, target[key][name], entry, (given or {}).get(name), f"{where}{key}.{name}.")
        elif explicit is None or key not in explicit:
            target[key] = value


def effective(raw: dict) -> dict:
    """The params a file means: typed defaults, then its ``profile``, then its own keys (which win)."""
    profile = raw.get("profile") or {}
    if not isinstance(profile, dict):
        raise ParamsError(f"profile: expected a mapping of sections (or {{}}), got {profile!r}")
    values = _merge(Params, Params().model_dump(exclude_none=True), raw)
    _fill(Params, values, profile, raw)
    return values


def _explain(err: ValidationError, path: str) -> str:
    lines = [f"{path}: invalid params"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(e["loc"][-1]), _fields_at(e["loc"]), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            lines.append(f"  - unknown key '{key}'{hint}")
        elif e["type"] == "value_error":  # our own validators: the message says it all
            lines.append(f"  - {key}: {e['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"  - {key}: {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def parse_params(raw: dict, path: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(effective(raw))
    except ParamsError as err:
        raise ParamsError(f"{path}: invalid params\n  - {err}") from None
    except ValidationError as err:
        raise ParamsError(_explain(err, path)) from None


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Read and validate a params file; ``overrides`` are merged section by section (tests)."""
    path = Path(path)
    if not path.exists():
        raise ParamsError(f"{path}: params file not found (run from the repository root)")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    for section, values in (overrides or {}).items():
        raw[section] = {**raw.get(section, {}), **values} if isinstance(values, dict) else values
    return parse_params(raw, str(path))


def main(argv=None) -> None:
    """``python -m tokenclean.params_file [params.yaml]``: the effective params, profile applied."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        params = load_params(args[0] if args else "params.yaml")
    except ParamsError as err:
        print(err, file=sys.stderr)
        sys.exit(2)
    print(yaml.safe_dump(params.model_dump(exclude={"profile"}, exclude_none=True), sort_keys=False), end="")


if __name__ == "__main__":
    main()
