"""The ``app.py manifest`` command line: defaults from the environment, exit codes, messages."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from manifest_helpers import APP_ID, DOMAIN, manifest_of, png, read_zip, write_zip
from PIL import Image

from manifest import ManifestSchema, main

OTHER_ID = "0f0e0d0c-0b0a-4909-8807-060504030201"


def test_build_takes_defaults_from_the_environment(
    tmp_path: Path, schema: ManifestSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "app.zip"
    environ = {
        "MicrosoftAppId": APP_ID,
        "BOT_DOMAIN": f"{DOMAIN}, bot2.contoso.example",
        "SSO_APP_ID_URI": f"api://{DOMAIN}/botid-{APP_ID}",
    }
    assert main(["build", "--out", str(out)], environ) == 0
    captured = capsys.readouterr()
    # The schema in node_modules was found and used: no "not checked" remark, no warning.
    assert captured.out.strip() == f"wrote {out}"
    assert captured.err == ""
    manifest = manifest_of(out)
    assert manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == [DOMAIN, "bot2.contoso.example", "token.botframework.com"]
    assert manifest["webApplicationInfo"] == {
        "id": APP_ID,
        "resource": f"api://{DOMAIN}/botid-{APP_ID}",
    }


def test_arguments_override_the_environment(tmp_path: Path, schema: ManifestSchema) -> None:
    out = tmp_path / "app.zip"
    environ = {"MicrosoftAppId": APP_ID, "BOT_DOMAIN": DOMAIN}
    code = main(
        [
            "build",
            "--out",
            str(out),
            "--app-id",
            OTHER_ID,
            "--domain",
            "a.example",
            "--domain",
            "b.example",
            "--app-version",
            "3.1.4",
            "--privacy-url",
            "https://legal.example/privacy",
        ],
        environ,
    )
    assert code == 0
    manifest = manifest_of(out)
    assert manifest["bots"][0]["botId"] == OTHER_ID
    assert manifest["webApplicationInfo"]["resource"] == f"api://botid-{OTHER_ID}"
    assert manifest["validDomains"] == ["a.example", "b.example", "token.botframework.com"]
    assert manifest["version"] == "3.1.4"
    assert manifest["developer"]["privacyUrl"] == "https://legal.example/privacy"
    assert manifest["developer"]["websiteUrl"] == "https://a.example/"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"BOT_DOMAIN": DOMAIN}, "--app-id is required (or set MicrosoftAppId)"),
        ({"MicrosoftAppId": APP_ID}, "--domain is required (or set BOT_DOMAIN)"),
    ],
)
def test_missing_required_value_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], environ: dict[str, str], expected: str
) -> None:
    assert main(["build", "--out", str(tmp_path / "app.zip")], environ) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "app.zip").exists()


def test_invalid_values_exit_1_with_one_line_per_field(
    tmp_path: Path, schema: ManifestSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "build",
            "--out",
            str(tmp_path / "app.zip"),
            "--app-id",
            "bot",
            "--domain",
            DOMAIN,
            "--app-version",
            "1.0",
            "--name",
            "An access review bot with a long name",
        ],
        {},
    )
    assert code == 1
    lines = capsys.readouterr().err.splitlines()
    assert all(line.startswith("error: $") for line in lines), lines
    named = {line.split(":")[1].strip() for line in lines}
    assert {
        "$.bots[0].botId",
        "$.id",
        "$.webApplicationInfo.id",
        "$.version",
        "$.name.short",
    } <= named
    assert not (tmp_path / "app.zip").exists()


def _broken_package(tmp_path: Path, built: Path) -> Path:
    files = read_zip(built)
    manifest = json.loads(files["manifest.json"])
    manifest["manifestVersion"] = "1.29"
    files["manifest.json"] = json.dumps(manifest).encode()
    files["color.png"] = png(Image.new("RGB", (128, 128), (1, 2, 3)))
    files["outline.png"] = png(Image.new("RGBA", (32, 32), (255, 255, 255, 255)))
    return write_zip(tmp_path / "broken.zip", files)


def test_validate_names_every_problem(
    tmp_path: Path, package: Path, schema: ManifestSchema, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(package)], {}) == 0
    assert capsys.readouterr().out.strip() == f"{package}: valid"

    broken = _broken_package(tmp_path, package)
    assert main(["validate", str(broken)], {}) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "error: $.icons.color: color.png: is 128×128 px; Teams needs 192×192",
        "error: $.icons.outline: outline.png: has no fully transparent pixel; the background "
        "must be transparent",
        "error: $.manifestVersion: must be '1.30', found '1.29'",
    ]


def test_validate_refuses_nested_files_and_missing_icons(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = read_zip(package)
    files["icons/color.png"] = files.pop("color.png")
    broken = write_zip(tmp_path / "nested.zip", files)
    assert main(["validate", str(broken)], {}) == 1
    err = capsys.readouterr().err
    assert "error: $: files must sit at the zip root, found ['icons/color.png']" in err
    assert "error: $.icons.color: 'color.png' is not in the package" in err


def test_validate_a_file_that_is_not_a_zip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_zip = tmp_path / "app.zip"
    not_zip.write_text("hello")
    assert main(["validate", str(not_zip)], {}) == 1
    assert "is not a readable zip" in capsys.readouterr().err
    assert not zipfile.is_zipfile(not_zip)


def test_without_node_modules_it_says_how_to_get_the_schema(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    out = tmp_path / "app.zip"
    code = main(
        ["build", "--out", str(out), "--app-id", APP_ID, "--domain", DOMAIN],
        {},
        schema_search_dirs=[empty],
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "run `npm ci` in the repository root" in captured.err
    assert "@microsoft/app-manifest" in captured.err
    assert captured.out.strip() == f"wrote {out} (schema not checked)"

    # The icon and project checks still run without the schema.
    broken = _broken_package(tmp_path, package)
    assert main(["validate", str(broken)], {}, schema_search_dirs=[empty]) == 1
    err = capsys.readouterr().err
    assert "error: $.icons.color:" in err and "error: $.manifestVersion:" in err


def test_explicit_schema_that_is_missing_is_a_usage_error(
    tmp_path: Path, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.json"
    assert main(["validate", str(package), "--schema", str(missing)], {}) == 2
    assert "cannot read the schema" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([], {}) == 2
    assert main(["build"], {}) == 2
    assert main(["--help"], {}) == 0
    assert "build" in capsys.readouterr().out
