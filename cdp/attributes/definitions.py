"""Custom attribute definitions, read from a YAML file designers edit and review.

The file is `cdp/definitions/custom_attributes.yml`, or the path in CDP_CUSTOM_ATTRIBUTES.
It is read once per change of the file (path and modification time), so editing it needs
no restart.
"""

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from cdp.attributes.errors import DefinitionError
from cdp.attributes.types import AttributeType

CUSTOM_ATTRIBUTES_ENV = "CDP_CUSTOM_ATTRIBUTES"
DEFINITIONS_DIR = Path(__file__).resolve().parent.parent / "definitions"
DEFAULT_CUSTOM_ATTRIBUTES = DEFINITIONS_DIR / "custom_attributes.yml"
NAME_MAX_LENGTH = 64
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

# Standard attributes are columns of profiles; a custom attribute may not shadow one.
STANDARD_ATTRIBUTES = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "language",
    "timezone",
    "address",
)
_DEFINITION_KEYS = frozenset({"type", "description", "allowed"})
_FILE_KEYS = frozenset({"version", "undeclared", "attributes"})
UNDECLARED_POLICIES = ("keep", "reject")


@dataclass(frozen=True)
class CustomAttribute:
    """One declared custom attribute; `allowed` limits a text attribute to listed values."""

    name: str
    type: AttributeType
    description: str = ""
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class CustomDefinitions:
    """Every declared custom attribute, and what to do with keys nobody declared.

    `undeclared: keep` stores undeclared keys untyped in the profile's free-form `custom`
    object (for data not modelled yet); `reject` refuses them.
    """

    version: int
    attributes: dict[str, CustomAttribute]
    undeclared: str = "keep"


def custom_definitions_path() -> Path:
    """The definitions file in use: CDP_CUSTOM_ATTRIBUTES or the shipped default."""
    configured = os.environ.get(CUSTOM_ATTRIBUTES_ENV, "").strip()
    return Path(configured) if configured else DEFAULT_CUSTOM_ATTRIBUTES


def load_custom_definitions(path: Path | None = None) -> CustomDefinitions:
    """The definitions in `path` (default: custom_definitions_path()), cached per file version."""
    target = (path or custom_definitions_path()).resolve()
    try:
        modified = target.stat().st_mtime_ns
    except OSError as error:
        raise DefinitionError(f"cannot read {target}: {error.strerror}") from None
    return _load_cached(target, modified)


@lru_cache(maxsize=8)
def _load_cached(path: Path, _modified: int) -> CustomDefinitions:
    document = read_yaml_mapping(path)
    _reject_unknown_keys(path, "the file", document, _FILE_KEYS)
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DefinitionError(f"{path}: version: must be a whole number")
    undeclared = document.get("undeclared", "keep")
    if undeclared not in UNDECLARED_POLICIES:
        raise DefinitionError(f"{path}: undeclared: must be keep or reject, got {undeclared!r}")
    entries = document.get("attributes") or {}
    if not isinstance(entries, dict):
        raise DefinitionError(f"{path}: attributes: must be a mapping of name to definition")
    attributes = {
        str(name): _custom_attribute(path, str(name), spec) for name, spec in entries.items()
    }
    return CustomDefinitions(version=version, attributes=attributes, undeclared=undeclared)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """A YAML file whose top level is a mapping; DefinitionError names the file otherwise."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DefinitionError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise DefinitionError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise DefinitionError(f"{path}: the top level must be a mapping")
    return document


def check_attribute_name(path: Path, name: str) -> None:
    """Names are lower_snake_case so formulas can refer to them."""
    if not ATTRIBUTE_NAME.fullmatch(name):
        raise DefinitionError(
            f"{path}: {name!r}: names are lower_snake_case, start with a letter, "
            f"at most {NAME_MAX_LENGTH} characters"
        )


def _reject_unknown_keys(
    path: Path, where: str, spec: dict[str, Any], allowed: frozenset[str]
) -> None:
    for key in spec:
        if key not in allowed:
            raise DefinitionError(
                f"{path}: {where}: unknown key {key!r}; "
                f"expected one of {', '.join(sorted(allowed))}"
            )


def _custom_attribute(path: Path, name: str, spec: object) -> CustomAttribute:
    check_attribute_name(path, name)
    if name in STANDARD_ATTRIBUTES:
        raise DefinitionError(f"{path}: {name}: is a standard attribute, pick another name")
    if not isinstance(spec, dict):
        raise DefinitionError(f"{path}: {name}: must be a mapping with at least a type")
    _reject_unknown_keys(path, name, spec, _DEFINITION_KEYS)
    try:
        attribute_type = AttributeType(spec.get("type"))
    except ValueError:
        known = ", ".join(member.value for member in AttributeType)
        raise DefinitionError(
            f"{path}: {name}: unknown type {spec.get('type')!r}; expected one of {known}"
        ) from None
    allowed = spec.get("allowed") or []
    if allowed and (
        attribute_type is not AttributeType.TEXT
        or not isinstance(allowed, list)
        or not all(isinstance(item, str) and item for item in allowed)
    ):
        raise DefinitionError(f"{path}: {name}: allowed: only for text, a list of strings")
    return CustomAttribute(
        name=name,
        type=attribute_type,
        description=str(spec.get("description") or ""),
        allowed=tuple(allowed),
    )
