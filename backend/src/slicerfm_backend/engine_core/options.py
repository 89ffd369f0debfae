"""Engine options given at start-up: ``--engine-option ENGINE.KEY=VALUE`` (repeatable) or
``SLICERFM_ENGINE_OPTIONS="sam-med3d.max_crops=4,sam-med3d.precision=fp16"``.

Each engine declares the options it takes in ``Engine.option_types`` (name -> parser of
the string value); an unknown engine, an unknown key or a value its parser refuses stops
the server at start-up with a message that lists what is accepted.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable

Parser = Callable[[str], Any]


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"must be a whole number >= 1, got {value}")
    return number


def positive_float(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"must be a number > 0, got {value}")
    return number


def non_negative_float(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError(f"must be a number >= 0, got {value}")
    return number


def fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise ValueError(f"must be a number from 0 to 1, got {value}")
    return number


def on_off(value: str) -> bool:
    """``on``/``off`` (also true/false, yes/no, 1/0) as a bool."""
    text = str(value).strip().lower()
    if text in ("on", "true", "yes", "1"):
        return True
    if text in ("off", "false", "no", "0"):
        return False
    raise ValueError(f"must be on or off, got {value!r}")


on_off.__name__ = "on/off"


def shape3(value: str) -> tuple:
    """``"128,128,128"`` (or ``128x128x128``) as three whole numbers >= 1."""
    parts = str(value).replace("x", ",").split(",")
    try:
        sides = tuple(positive_int(part.strip()) for part in parts)
    except ValueError:
        sides = ()
    if len(sides) != 3:
        raise ValueError(f"must be three whole numbers >= 1 like 128,128,128, got {value!r}")
    return sides


shape3.__name__ = "three sides, e.g. 128,128,128"


def choice(*allowed: str) -> Parser:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {value!r}")
        return value

    parse.__name__ = f"one of {'/'.join(allowed)}"
    return parse


def parse_option_specs(specs: Iterable[str]) -> Dict[str, Dict[str, str]]:
    """``["a.k=v", "a.k2=v2,b.k=v"]`` -> ``{"a": {"k": "v", "k2": "v2"}, "b": {"k": "v"}}``
    (strings; see :func:`typed_options`). ValueError when an item is not ENGINE.KEY=VALUE."""
    out: Dict[str, Dict[str, str]] = {}
    for spec in specs:
        for item in filter(None, (part.strip() for part in str(spec).split(","))):
            target, sep, value = item.partition("=")
            engine, dot, key = target.strip().rpartition(".")
            if not sep or not dot or not engine or not key or not value.strip():
                raise ValueError(f"engine option: expected ENGINE.KEY=VALUE, got {item!r}")
            out.setdefault(engine, {})[key] = value.strip()
    return out


def typed_options(engine: str, types: Dict[str, Parser], given: Dict[str, Any]) -> Dict[str, Any]:
    """``given`` with every value parsed by ``types``; ValueError naming the accepted keys."""
    out = {}
    for key, value in given.items():
        parser = types.get(key)
        if parser is None:
            accepted = ", ".join(sorted(types)) or "none"
            raise ValueError(f"engine {engine!r} has no option {key!r} (its options: {accepted})")
        try:
            out[key] = parser(value) if isinstance(value, str) else value
        except ValueError as error:
            raise ValueError(f"engine option {engine}.{key}: {error}") from None
    return out
