"""Checks of option values, framework-free: each takes a Python value and raises ValueError
naming the option and the value. A tensor is accepted where an option may be learned (a
temperature) and is not checked.
"""

import collections.abc
import dataclasses
import math
import numbers


def is_number(value):
    """A finite real number; bools are refused (True would read as 1)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def is_tensor(value):
    # Duck-typed, so that no framework is imported: every backend's tensors have both.
    return hasattr(value, "shape") and hasattr(value, "dtype")


def check_number(name, value, bound):
    if not is_number(value):
        raise ValueError(f"{name} must be a finite number {bound}; received {name}={value!r}")


def check_non_negative(name, value):
    check_number(name, value, ">= 0")
    if value < 0:
        raise ValueError(f"{name} must be >= 0; received {name}={value!r}")


def check_positive(name, value):
    """A number > 0, or a tensor (e.g. a learned temperature), which is not checked."""
    if is_tensor(value) and not isinstance(value, numbers.Real):
        return
    check_number(name, value, "> 0")
    if value <= 0:
        raise ValueError(f"{name} must be > 0; received {name}={value!r}")


def check_fraction(name, value):
    """A number in [0, 1]."""
    check_number(name, value, "in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; received {name}={value!r}")


def check_unit_interval(name, value):
    """A number in (0, 1]."""
    check_number(name, value, "in (0, 1]")
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1]; received {name}={value!r}")


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; received {name}={value!r}")


def check_flag(name, value):
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; received {name}={value!r}")


def options_from_mapping(options_type, mapping, where=None):
    """`options_type(**mapping)`, the options of a plain mapping (an experiment file's JSON
    object), missing keys at their defaults. An unknown key is an error naming the known ones;
    `where` (e.g. the file and field) starts every message when given."""
    prefix = f"{where}: " if where else ""
    if not isinstance(mapping, collections.abc.Mapping):
        raise ValueError(f"{prefix}options must be a JSON object (a dict); received "
                         f"{type(mapping).__name__}")
    known = [field.name for field in dataclasses.fields(options_type)]
    unknown = sorted(set(mapping) - set(known), key=str)
    if unknown:
        raise ValueError(f"{prefix}unknown option(s) {unknown}; known: {sorted(known)}")
    try:
        return options_type(**mapping)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{prefix}{error}") from None


def check_positive_int(value, name):
    """`value` as an int, or ValueError when it is not an integer >= 1 (bools refused).

    `name` is written into the message as given: "`k`" for a function's argument, "batch_size"
    where the surrounding messages name attributes without quotes.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    return int(value)


def check_seed(seed):
    """`seed` as an int, or ValueError unless it is an integer >= 0 (bools refused)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
