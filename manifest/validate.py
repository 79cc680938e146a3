"""Validation of a Teams app package: the official manifest schema, the icons and this project's rules.

The schema is Microsoft's own, as shipped in the npm package ``@microsoft/app-manifest`` (installed
by ``npm ci`` from the repository's ``package.json``) — never fetched from the network. Its files are
JSON Schema draft-04, but Microsoft validates them with ``ajv-draft-04``, whose vocabulary also
understands ``const``, ``if``/``then``/``else``, ``contains`` and ``propertyNames`` and which runs
``pattern`` as ECMAScript regular expressions with the ``u`` flag. The validator here mirrors that, so
a manifest that passes here passes Microsoft's tooling and the other way round.

Every problem found is a :class:`Problem` that names the field as a JSON path (``$.bots[0].botId``),
so the command line can print one readable line per problem.
"""

from __future__ import annotations

import functools
import io
import json
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import referencing
from jsonschema import Draft4Validator, Draft7Validator, FormatChecker, ValidationError, validators
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from PIL import Image, UnidentifiedImageError
from referencing.jsonschema import DRAFT4

MANIFEST_VERSION = "1.30"
"""The manifest schema version this project builds: the newest GA version (Aug 2026)."""

SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
    "MicrosoftTeams.schema.json"
)
SCHEMA_NPM_PACKAGE = "@microsoft/app-manifest"
SCHEMA_RELATIVE_PATH = Path(
    "node_modules",
    "@microsoft",
    "app-manifest",
    "build",
    "json-schemas",
    "teams",
    f"v{MANIFEST_VERSION}",
    "MicrosoftTeams.schema.json",
)
"""Where the schema file sits below a folder where ``npm ci`` has run."""

MANIFEST_FILE = "manifest.json"
SSO_DOMAIN = "token.botframework.com"

IconRole = Literal["color", "outline", "color32x32"]
ICON_SIZES_PX: Mapping[IconRole, int] = {"color": 192, "outline": 32, "color32x32": 32}

# A message longer than this is cut: jsonschema quotes whole sub-documents in some messages, and the
# command line promises one readable line per problem.
_MAX_MESSAGE_CHARS = 240

_GUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Teams needs MAJOR.MINOR.PATCH without leading zeros; the 1.30 schema itself leaves `version`
# unconstrained, Developer Portal and the admin centre reject anything else.
_SEMVER = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a package.

    ``path`` is a JSON path into manifest.json (``$.icons.outline``), or ``$`` for the package
    itself; ``message`` says what is wrong in one line.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestInvalid(Exception):
    """Raised when a package would be, or is, rejected; carries every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(str(problem) for problem in self.problems))


class SchemaUnusable(Exception):
    """The schema file cannot be used offline (unreadable, remote $ref, unsupported pattern)."""


# --- ECMAScript regular expressions ----------------------------------------------------------


@functools.cache
def _unicode_category_class(category: str) -> str:
    """The body of a character class matching Unicode general category ``category`` (``L``, ``Lu``).

    Python's ``re`` has no ``\\p{…}``; listing the ranges from ``unicodedata`` is exact for the
    Unicode version of this Python.
    """
    ranges: list[str] = []
    start: int | None = None
    previous = -2
    for code_point in range(0x110000):
        if unicodedata.category(chr(code_point)).startswith(category):
            if code_point != previous + 1:
                if start is not None:
                    ranges.append(_range_text(start, previous))
                start = code_point
            previous = code_point
    if start is None:
        raise SchemaUnusable(f"unknown Unicode category {category!r}")
    ranges.append(_range_text(start, previous))
    return "".join(ranges)


def _range_text(first: int, last: int) -> str:
    def escape(code_point: int) -> str:
        return f"\\U{code_point:08x}"

    return escape(first) if first == last else f"{escape(first)}-{escape(last)}"


def translate_ecma_pattern(pattern: str) -> str:
    """Rewrite an ECMAScript (``u`` flag) pattern into Python ``re`` syntax.

    Only what differs in the Teams schemas is rewritten: ``\\p{Cat}`` (inside or outside a class)
    and ``\\P{Cat}`` outside a class. Everything else used there (``\\S``, ``\\v``, ``\\b`` inside a
    class, ``\\uXXXX``, lookahead) means the same in both. Raises :class:`SchemaUnusable` for a
    construct that cannot be carried over faithfully.
    """
    out: list[str] = []
    in_class = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped in "pP" and pattern.startswith("{", index + 2):
                end = pattern.find("}", index + 3)
                if end < 0:
                    raise SchemaUnusable(f"unterminated \\{escaped}{{ in pattern {pattern!r}")
                body = _unicode_category_class(pattern[index + 3 : end])
                if escaped == "p":
                    out.append(body if in_class else f"[{body}]")
                elif in_class:
                    raise SchemaUnusable(f"\\P{{…}} inside a class in pattern {pattern!r}")
                else:
                    out.append(f"[^{body}]")
                index = end + 1
                continue
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


@functools.cache
def compile_ecma_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a schema ``pattern`` (ECMAScript syntax) for Python; cached."""
    try:
        return re.compile(translate_ecma_pattern(pattern))
    except re.error as exc:
        raise SchemaUnusable(f"pattern {pattern!r} cannot be used in Python: {exc}") from exc


# --- the schema validator ----------------------------------------------------------------------


def _pattern_keyword(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # ajv tests with RegExp.test, i.e. search semantics, like re.search.
    if validator.is_type(instance, "string") and not compile_ecma_pattern(pattern).search(instance):
        yield ValidationError(f"{_short_repr(instance)} does not match {pattern!r}")


def _required_keyword(
    validator: Validator, required: Sequence[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    # Put the missing property into the error's path, so the problem names the field itself
    # ($.bots[0].botId) rather than its parent.
    if not validator.is_type(instance, "object"):
        return
    for name in required:
        if name not in instance:
            yield ValidationError("is required but missing", path=[name])


def _is_uri(value: object) -> bool:
    # ajv-formats checks RFC 3986 "URI" (absolute, with a scheme). This is the same rule written
    # with the standard library: a valid scheme, no whitespace or control characters.
    if not isinstance(value, str):
        return True
    if any(char.isspace() or ord(char) < 0x20 for char in value) or ":" not in value:
        return False
    try:
        scheme = urlsplit(value).scheme
    except ValueError:
        return False
    return bool(_URI_SCHEME.match(scheme)) and value.lower().startswith(scheme.lower() + ":")


def _is_email(value: object) -> bool:
    if not isinstance(value, str):
        return True
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain and " " not in value)


def _is_regex(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        compile_ecma_pattern(value)
    except SchemaUnusable:
        return False
    return True


def _format_checker() -> FormatChecker:
    # The formats Microsoft's validator enables (ajv-formats: uri, email, regex) and no others.
    checker = FormatChecker(formats=())
    checker.checks("uri")(_is_uri)
    checker.checks("email")(_is_email)
    checker.checks("regex")(_is_regex)
    return checker


@functools.cache
def _validator_class() -> type[Validator]:
    # Draft-04 keywords plus the later ones ajv-draft-04 also runs. Built with create() rather than
    # extend(): jsonschema's draft-04 class ignores keywords beside a "$ref" (as draft-04 says),
    # ajv applies them, and the Teams schemas have some ("type" next to "$ref" in extensions).
    return validators.create(
        meta_schema=Draft4Validator.META_SCHEMA,
        validators={
            **Draft4Validator.VALIDATORS,
            "const": Draft7Validator.VALIDATORS["const"],
            "contains": Draft7Validator.VALIDATORS["contains"],
            "if": Draft7Validator.VALIDATORS["if"],
            "propertyNames": Draft7Validator.VALIDATORS["propertyNames"],
            "pattern": _pattern_keyword,
            "required": _required_keyword,
        },
        type_checker=Draft4Validator.TYPE_CHECKER,
        format_checker=_format_checker(),
        id_of=_draft4_id,
    )


def _draft4_id(schema: bool | Mapping[str, Any]) -> str:
    # DRAFT4.id_of returns None for "no id"; jsonschema only tests the result for truth, and the
    # stubs want a str.
    return DRAFT4.id_of(schema) or ""


def _iter_patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from _iter_patterns(value)
    elif isinstance(node, list):
        for item in node:
            yield from _iter_patterns(item)


def _iter_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _iter_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _iter_refs(item)


class ManifestSchema:
    """The official Teams manifest schema, loaded from a local file and ready to validate."""

    def __init__(self, schema: Mapping[str, Any], *, source: str) -> None:
        """Prepare ``schema`` (a parsed schema document); ``source`` names it in messages.

        Raises :class:`SchemaUnusable` when it would need the network or has a pattern Python
        cannot run, so that shows up now and not halfway through a validation.
        """
        self.source = source
        remote = sorted({ref for ref in _iter_refs(schema) if not ref.startswith("#")})
        if remote:
            raise SchemaUnusable(
                f"{source}: $ref to other documents is not resolved offline: {remote}"
            )
        for pattern in _iter_patterns(schema):
            compile_ecma_pattern(pattern)
        # The document is registered under its public URL in a registry that retrieves nothing
        # (referencing's default), so an unknown URI fails instead of being fetched; passing a
        # registry also turns off jsonschema's deprecated automatic remote retrieval.
        resource = referencing.Resource.from_contents(dict(schema), default_specification=DRAFT4)
        registry: referencing.Registry[Any] = referencing.Registry().with_resource(
            SCHEMA_URL, resource
        )
        self._validator = _validator_class()(
            dict(schema), registry=registry, format_checker=_format_checker()
        )

    @classmethod
    def load(cls, path: Path) -> ManifestSchema:
        """Read a schema file (for example ``node_modules/…/v1.30/MicrosoftTeams.schema.json``)."""
        try:
            text = path.read_text(encoding="utf-8-sig")
            document = json.loads(text)
        except (OSError, ValueError) as exc:
            raise SchemaUnusable(f"{path}: cannot read the schema: {exc}") from exc
        if not isinstance(document, dict):
            raise SchemaUnusable(f"{path}: the schema is not a JSON object")
        return cls(document, source=str(path))

    def problems(self, manifest: Any) -> list[Problem]:
        """Every schema violation in ``manifest`` (the parsed manifest.json), sorted by path."""
        found: list[Problem] = []
        for error in self._validator.iter_errors(manifest):
            # For anyOf/oneOf the top error only says "not valid under any"; the nearest
            # sub-error says which field to fix.
            reported = best_match(error.context) if error.context else error
            assert reported is not None
            found.append(Problem(reported.json_path, _describe(reported)))
        return sorted(set(found))


def _describe(error: ValidationError) -> str:
    """A short message for a schema error; jsonschema's own quote whole values (long lists)."""
    keyword, expected, value = error.validator, error.validator_value, error.instance
    if keyword == "const":
        return f"must be {expected!r}, found {_short_repr(value)}"
    if keyword in ("maxItems", "minItems") and isinstance(value, list):
        bound = "at most" if keyword == "maxItems" else "at least"
        return f"has {len(value)} items; {bound} {expected} allowed"
    if keyword in ("maxLength", "minLength") and isinstance(value, str):
        bound = "at most" if keyword == "maxLength" else "at least"
        return f"is {len(value)} characters long; {bound} {expected} allowed"
    if keyword == "enum":
        return f"{_short_repr(value)} is not one of {expected!r}"
    if keyword == "type":
        return f"{_short_repr(value)} is not of type {expected!r}"
    if keyword == "format":
        return f"{_short_repr(value)} is not a valid {expected}"
    return _one_line(error.message)


def find_schema(search_dirs: Iterable[Path]) -> Path | None:
    """The schema file in ``node_modules`` at or above any of ``search_dirs``, or None."""
    for start in search_dirs:
        start = start.resolve()
        for folder in (start, *start.parents):
            candidate = folder / SCHEMA_RELATIVE_PATH
            if candidate.is_file():
                return candidate
    return None


# --- icons -------------------------------------------------------------------------------------


def icon_problems(data: bytes, *, role: IconRole, path: str) -> list[Problem]:
    """Check one icon file against Teams' rules for its ``role``; ``path`` is its manifest field.

    Colour icons: a PNG of 192×192 (``color32x32``: 32×32). Outline icon: a PNG of 32×32 whose
    every pixel is white (255, 255, 255) or fully transparent, with at least one of each.
    """
    expected_px = ICON_SIZES_PX[role]
    try:
        with warnings.catch_warnings():
            # open() reads only the header; the size check below refuses a huge image before
            # its pixels are decoded, so Pillow's warning about large images adds nothing.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        return [Problem(path, f"is far larger than {expected_px}×{expected_px} px")]
    except (UnidentifiedImageError, OSError) as exc:
        return [Problem(path, f"not a readable image ({type(exc).__name__})")]
    with image:
        if image.format != "PNG":
            return [Problem(path, f"must be a PNG, found {image.format}")]
        width_px, height_px = image.size
        # Checked before decoding the pixels, so a huge image is never loaded.
        if (width_px, height_px) != (expected_px, expected_px):
            return [
                Problem(
                    path,
                    f"is {width_px}×{height_px} px; Teams needs {expected_px}×{expected_px}",
                )
            ]
        try:
            image.load()
        except (OSError, ValueError) as exc:
            return [Problem(path, f"PNG data is damaged ({exc})")]
        if role != "outline":
            return []
        return _outline_problems(image, path)


def _outline_problems(image: Image.Image, path: str) -> list[Problem]:
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return [
            Problem(
                path,
                f"has no transparency (PNG mode {image.mode}); the background "
                "must be fully transparent",
            )
        ]
    rgba = image.convert("RGBA").tobytes()
    width_px = image.size[0]
    transparent = 0
    visible = 0
    off_white: list[int] = []
    for offset in range(0, len(rgba), 4):
        red, green, blue, alpha = rgba[offset : offset + 4]
        if alpha == 0:
            transparent += 1
            continue
        visible += 1
        if (red, green, blue) != (255, 255, 255):
            off_white.append(offset // 4)
    problems: list[Problem] = []
    if off_white:
        first = off_white[0]
        x, y = first % width_px, first // width_px
        red, green, blue, alpha = rgba[first * 4 : first * 4 + 4]
        problems.append(
            Problem(
                path,
                f"{len(off_white)} pixel(s) are neither white nor fully transparent, first at "
                f"x={x} y={y}: rgba({red}, {green}, {blue}, {alpha})",
            )
        )
    if transparent == 0:
        problems.append(
            Problem(path, "has no fully transparent pixel; the background must be transparent")
        )
    if visible == 0:
        problems.append(Problem(path, "is fully transparent; it shows nothing"))
    return problems


# --- this project's rules ------------------------------------------------------------------------


def project_problems(manifest: Any) -> list[Problem]:
    """Rules of this project and of Teams that the schema cannot express (or when it is absent).

    The package is for one bot in personal scope whose Entra app (same id) is also the SSO app
    (``shared/reference/teams-platform.md`` §5.1, §6).
    """
    if not isinstance(manifest, dict):
        return [Problem("$", "manifest.json must be a JSON object")]
    problems: list[Problem] = []
    if manifest.get("manifestVersion") != MANIFEST_VERSION:
        problems.append(
            Problem(
                "$.manifestVersion",
                f"must be {MANIFEST_VERSION!r}, the version this project builds",
            )
        )
    if manifest.get("$schema") != SCHEMA_URL:
        problems.append(Problem("$['$schema']", f"must be {SCHEMA_URL}"))
    version = manifest.get("version")
    if not isinstance(version, str) or not _SEMVER.match(version):
        problems.append(
            Problem("$.version", f"{_short_repr(version)} is not MAJOR.MINOR.PATCH (semver)")
        )
    if not _is_guid(manifest.get("id")):
        problems.append(Problem("$.id", f"{_short_repr(manifest.get('id'))} is not a GUID"))

    bots = manifest.get("bots")
    bot: dict[str, Any] = {}
    if not isinstance(bots, list) or len(bots) != 1 or not isinstance(bots[0], dict):
        problems.append(Problem("$.bots", "must list exactly one bot"))
    else:
        bot = bots[0]
        if not _is_guid(bot.get("botId")):
            problems.append(
                Problem("$.bots[0].botId", f"{_short_repr(bot.get('botId'))} is not a GUID")
            )
        scopes = bot.get("scopes")
        if not isinstance(scopes, list) or "personal" not in scopes:
            problems.append(
                Problem(
                    "$.bots[0].scopes",
                    "must include 'personal' (1:1 chats and Universal Actions SSO need it)",
                )
            )

    web_app = manifest.get("webApplicationInfo")
    if not isinstance(web_app, dict):
        problems.append(Problem("$.webApplicationInfo", "is required for Teams SSO"))
    else:
        if not _is_guid(web_app.get("id")):
            problems.append(
                Problem(
                    "$.webApplicationInfo.id", f"{_short_repr(web_app.get('id'))} is not a GUID"
                )
            )
        elif bot and web_app.get("id") != bot.get("botId"):
            problems.append(
                Problem(
                    "$.webApplicationInfo.id",
                    "must be the bot's app id (the SSO app is the bot's Entra app)",
                )
            )
        resource = web_app.get("resource")
        if not isinstance(resource, str) or not resource.strip():
            problems.append(
                Problem(
                    "$.webApplicationInfo.resource",
                    "must be the Application ID URI, e.g. api://botid-{appId}",
                )
            )

    domains = manifest.get("validDomains")
    if not isinstance(domains, list):
        problems.append(Problem("$.validDomains", f"must list {SSO_DOMAIN} for SSO"))
    else:
        for index, domain in enumerate(domains):
            reason = domain_problem(domain)
            if reason:
                problems.append(Problem(f"$.validDomains[{index}]", reason))
        if SSO_DOMAIN not in domains:
            problems.append(Problem("$.validDomains", f"must include {SSO_DOMAIN} for SSO"))
    return problems


def domain_problem(domain: object) -> str | None:
    """Why ``domain`` cannot be a ``validDomains`` entry, or None when it can.

    Teams wants a host name (wildcards like ``*.example.com`` allowed), without scheme or path.
    """
    if not isinstance(domain, str) or not domain:
        return f"{_short_repr(domain)} is not a host name"
    if "://" in domain or "/" in domain or any(char.isspace() for char in domain):
        return f"{domain!r} must be a host name without scheme, path or spaces"
    return None


def _is_guid(value: object) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


# --- packages ----------------------------------------------------------------------------------


def manifest_problems(manifest: Any, schema: ManifestSchema | None) -> list[Problem]:
    """Schema problems (when ``schema`` is given) plus this project's rules, sorted by path.

    Where the schema already reports a field, the project's rule for the same field is left out,
    so each mistake is one line.
    """
    schema_found = schema.problems(manifest) if schema is not None else []
    flagged = {problem.path for problem in schema_found}
    own = [problem for problem in project_problems(manifest) if problem.path not in flagged]
    return sorted({*schema_found, *own})


def package_problems(files: Mapping[str, bytes], schema: ManifestSchema | None) -> list[Problem]:
    """Check the contents of an app package (file name at the zip root → bytes)."""
    problems: list[Problem] = []
    nested = sorted(name for name in files if "/" in name or "\\" in name)
    if nested:
        problems.append(Problem("$", f"files must sit at the zip root, found {nested}"))
    raw = files.get(MANIFEST_FILE)
    if raw is None:
        return [*problems, Problem("$", f"{MANIFEST_FILE} is missing from the zip root")]
    try:
        # utf-8-sig: Microsoft's tooling strips a byte-order mark, so a BOM is not an error.
        manifest = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return [
            *problems,
            Problem("$", f"{MANIFEST_FILE} is not valid JSON: {_one_line(str(exc))}"),
        ]
    problems += manifest_problems(manifest, schema)

    icons = manifest.get("icons") if isinstance(manifest, dict) else None
    if isinstance(icons, dict):
        for role in ICON_SIZES_PX:
            file_name = icons.get(role)
            if not isinstance(file_name, str):
                continue  # absent optional icon, or already reported by the schema
            field = f"$.icons.{role}"
            data = files.get(file_name)
            if data is None:
                problems.append(Problem(field, f"{file_name!r} is not in the package"))
                continue
            problems += [
                Problem(p.path, f"{file_name}: {p.message}")
                for p in icon_problems(data, role=role, path=field)
            ]
    return sorted(set(problems))


def read_package(zip_path: Path) -> dict[str, bytes]:
    """The files of an app package zip; raises :class:`ManifestInvalid` when it is not a zip."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except (OSError, zipfile.BadZipFile) as exc:
        raise ManifestInvalid([Problem("$", f"{zip_path} is not a readable zip: {exc}")]) from exc


def validate_package(zip_path: Path, *, schema: ManifestSchema | None) -> list[Problem]:
    """Every problem in the app package at ``zip_path``; an empty list means it is valid."""
    try:
        files = read_package(zip_path)
    except ManifestInvalid as exc:
        return list(exc.problems)
    return package_problems(files, schema)


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _MAX_MESSAGE_CHARS else flat[: _MAX_MESSAGE_CHARS - 1] + "…"


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
