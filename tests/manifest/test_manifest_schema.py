"""Validation against the official Teams manifest schema from node_modules, offline.

The parity tests run the same documents through Microsoft's own validation stack (ajv-draft-04 and
ajv-formats in node_modules, via ``ajv_check.js``) and require the same verdicts, so the Python
validator cannot drift from what Teams' tooling accepts.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from manifest_helpers import APP_ID, DOMAIN, manifest_of

from manifest import ManifestSchema, SchemaUnusable, validate_package
from manifest.build import build_manifest
from manifest.validate import compile_ecma_pattern

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def apply(manifest: dict[str, Any]) -> None:
        *parents, last = _parts(path)
        target: Any = manifest
        for part in parents:
            target = target[part]
        target[last] = value

    return apply


def _delete(path: str) -> Mutation:
    def apply(manifest: dict[str, Any]) -> None:
        *parents, last = _parts(path)
        target: Any = manifest
        for part in parents:
            target = target[part]
        del target[last]

    return apply


def _parts(path: str) -> list[str | int]:
    return [int(part) if part.isdigit() else part for part in path.split(".")]


# (mutation, the JSON path the problem must name)
BROKEN: dict[str, tuple[Mutation, str]] = {
    "older manifest version": (_set("manifestVersion", "1.29"), "$.manifestVersion"),
    "missing bot id": (_delete("bots.0.botId"), "$.bots[0].botId"),
    "bot id not a guid": (_set("bots.0.botId", "bot-1"), "$.bots[0].botId"),
    "missing bot scopes": (_delete("bots.0.scopes"), "$.bots[0].scopes"),
    "unknown bot scope": (_set("bots.0.scopes", ["everywhere"]), "$.bots[0].scopes[0]"),
    "supportsFiles not boolean": (_set("bots.0.supportsFiles", "no"), "$.bots[0].supportsFiles"),
    "short name too long": (_set("name.short", "x" * 31), "$.name.short"),
    "accent colour not hex": (_set("accentColor", "blue"), "$.accentColor"),
    "developer url not http": (_set("developer.websiteUrl", "ftp://x"), "$.developer.websiteUrl"),
    "sso app id not a guid": (_set("webApplicationInfo.id", "abc"), "$.webApplicationInfo.id"),
    "missing icons": (_delete("icons"), "$.icons"),
    "unknown top-level field": (_set("botIdentity", "x"), "$"),
    "too many commands": (
        _set("bots.0.commandLists.0.commands", [{"title": f"c{i}"} for i in range(13)]),
        "$.bots[0].commandLists[0].commands",
    ),
    "schema url not a uri": (_set("$schema", "not a uri"), "$['$schema']"),
}


@pytest.fixture
def good_manifest() -> dict[str, Any]:
    return build_manifest(app_id=APP_ID, sso_resource=None, domains=[DOMAIN], version="1.0.0")


def test_built_package_passes_the_official_schema(package: Path, schema: ManifestSchema) -> None:
    assert validate_package(package, schema=schema) == []
    assert schema.problems(manifest_of(package)) == []


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_manifest_names_the_field(
    case: str, good_manifest: dict[str, Any], schema: ManifestSchema
) -> None:
    mutate, expected_path = BROKEN[case]
    mutate(good_manifest)
    problems = schema.problems(good_manifest)
    assert expected_path in [problem.path for problem in problems], problems
    for problem in problems:
        assert "\n" not in str(problem)


def test_messages_say_what_was_expected(
    good_manifest: dict[str, Any], schema: ManifestSchema
) -> None:
    good_manifest["manifestVersion"] = "1.29"
    good_manifest["name"]["short"] = "x" * 31
    assert [str(problem) for problem in schema.problems(good_manifest)] == [
        "$.manifestVersion: must be '1.30', found '1.29'",
        "$.name.short: is 31 characters long; at most 30 allowed",
    ]


def _run_ajv(
    schema_path: Path, manifests: list[Any], regex: list[Any], *, node_modules: Path | None = None
) -> dict[str, Any]:
    """Microsoft's verdicts (JSON paths per document, regex matches) from ajv_check.js."""
    node = shutil.which("node")
    assert node is not None, "node must be on PATH where node_modules was installed"
    if node_modules is None:
        node_modules = schema_path.parents[6]
    assert node_modules.name == "node_modules"
    result = subprocess.run(
        [node, str(Path(__file__).with_name("ajv_check.js"))],
        input=json.dumps(
            {
                "nodeModules": str(node_modules),
                "schema": str(schema_path),
                "manifests": manifests,
                "regex": regex,
            }
        ),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, dict)
    return loaded


def test_same_verdicts_as_microsofts_validator(
    good_manifest: dict[str, Any], schema: ManifestSchema, schema_path: Path
) -> None:
    manifests = [good_manifest]
    for mutate, _ in BROKEN.values():
        broken = copy.deepcopy(good_manifest)
        mutate(broken)
        manifests.append(broken)
    ours = [sorted({problem.path for problem in schema.problems(m)}) for m in manifests]
    theirs = [
        # ajv writes a "$schema" key as .$schema; ours quotes it.
        [path.replace(".$schema", "['$schema']") for path in paths]
        for paths in _run_ajv(schema_path, manifests, [])["manifests"]
    ]
    assert ours[0] == [] == theirs[0]
    assert ours == theirs


def _schema_patterns(schema_path: Path) -> set[str]:
    return set(re.findall(r'"pattern":\s*("(?:[^"\\]|\\.)*")', schema_path.read_text()))


def test_schema_patterns_behave_like_ecmascript(schema_path: Path) -> None:
    patterns = sorted(json.loads(text) for text in _schema_patterns(schema_path))
    assert any("\\p{L}" in pattern for pattern in patterns)  # the case Python re lacks
    samples = [
        "",
        "abc",
        "Ärger_1.x",
        "名前",
        "1abc",
        "_x",
        "a b",
        "a\tb.xll",
        "ab.xll",
        "#a1B2c3",
        "#12345",
        "1.2.3",
        "01.2.3",
        "HTTPS://x",
        "http://x",
        "en-us",
        "ΣΑΣ",
        "x\u0007y.xll",
        "small",
        "12.5",
        "A1",
        "a-b_c+d",
    ]
    theirs = _run_ajv(schema_path, [], [[pattern, samples] for pattern in patterns])["regex"]
    for pattern, verdicts in zip(patterns, theirs, strict=True):
        ours = [bool(compile_ecma_pattern(pattern).search(sample)) for sample in samples]
        assert ours == verdicts, pattern


def test_keywords_beside_ref_apply_as_in_ajv(tmp_path: Path, schema_path: Path) -> None:
    # Draft-04 says to ignore them, ajv (and so Teams' tooling) applies them; the Teams schemas
    # put "type" next to "$ref" in places.
    document = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "definitions": {"short": {"maxLength": 3}},
        "properties": {"key": {"$ref": "#/definitions/short", "type": "string"}},
    }
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(document))
    documents = [{"key": "abc"}, {"key": 7}, {"key": "abcd"}]
    ours = [
        [p.path for p in ManifestSchema(document, source="test").problems(d)] for d in documents
    ]
    assert ours == [[], ["$.key"], ["$.key"]]
    assert (
        _run_ajv(schema_file, documents, [], node_modules=schema_path.parents[6])["manifests"]
        == ours
    )


def test_remote_refs_are_refused_without_network() -> None:
    with pytest.raises(SchemaUnusable, match="not resolved offline"):
        ManifestSchema(
            {"properties": {"a": {"$ref": "https://example.invalid/s.json#/x"}}}, source="test"
        )


def test_unsupported_pattern_fails_when_loading() -> None:
    # An ECMAScript named group has no faithful Python spelling here: refuse it up front.
    with pytest.raises(SchemaUnusable, match="cannot be used in Python"):
        ManifestSchema(
            {"properties": {"a": {"type": "string", "pattern": "^(?<n>a)$"}}}, source="test"
        )


def test_unreadable_schema_file(tmp_path: Path) -> None:
    broken = tmp_path / "MicrosoftTeams.schema.json"
    broken.write_text("{ not json")
    with pytest.raises(SchemaUnusable, match="cannot read the schema"):
        ManifestSchema.load(broken)
