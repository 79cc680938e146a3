"""Building the package: contents, ids, domains, determinism, and refusing a bad package."""

from __future__ import annotations

from pathlib import Path

import pytest
from manifest_helpers import APP_ID, DOMAIN, manifest_of, png, read_zip
from PIL import Image

from manifest import DeveloperInfo, ManifestInvalid, build_package
from manifest.build import COLOR_ICON_FILE, ICON_DIR, OUTLINE_ICON_FILE, build_manifest
from manifest.validate import SCHEMA_URL, manifest_problems


def test_package_holds_manifest_and_icons_at_the_root(package: Path) -> None:
    files = read_zip(package)
    assert sorted(files) == ["color.png", "manifest.json", "outline.png"]
    assert files["color.png"] == (ICON_DIR / COLOR_ICON_FILE).read_bytes()
    assert files["outline.png"] == (ICON_DIR / OUTLINE_ICON_FILE).read_bytes()


def test_manifest_fills_ids_domains_and_bot(package: Path) -> None:
    manifest = manifest_of(package)
    assert manifest["$schema"] == SCHEMA_URL
    assert manifest["manifestVersion"] == "1.30"
    assert manifest["version"] == "1.2.3"
    assert manifest["id"] == APP_ID
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
    (bot,) = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert bot["scopes"] == ["personal"]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    (commands,) = bot["commandLists"]
    assert commands["scopes"] == ["personal"]
    assert [command["title"] for command in commands["commands"]] == ["pending", "help"]
    assert manifest["webApplicationInfo"] == {"id": APP_ID, "resource": f"api://botid-{APP_ID}"}
    assert manifest["validDomains"] == [DOMAIN, "token.botframework.com"]
    assert manifest["developer"]["privacyUrl"] == f"https://{DOMAIN}/privacy"


def test_configured_sso_resource_developer_and_teams_app_id(tmp_path: Path) -> None:
    other_id = "11111111-2222-4333-8444-555555555555"
    developer = DeveloperInfo(
        name="Contoso IT",
        website_url="https://it.contoso.example/",
        privacy_url="https://it.contoso.example/p",
        terms_of_use_url="https://it.contoso.example/t",
    )
    out = build_package(
        app_id=APP_ID,
        sso_resource=f"api://{DOMAIN}/botid-{APP_ID}",
        domains=[DOMAIN, "token.botframework.com", DOMAIN],
        version="2.0.0",
        out_path=tmp_path / "nested" / "app.zip",
        developer=developer,
        teams_app_id=other_id,
    )
    manifest = manifest_of(out)
    assert manifest["webApplicationInfo"]["resource"] == f"api://{DOMAIN}/botid-{APP_ID}"
    assert manifest["validDomains"] == [DOMAIN, "token.botframework.com"]
    assert manifest["developer"]["name"] == "Contoso IT"
    assert manifest["developer"]["termsOfUseUrl"] == "https://it.contoso.example/t"
    assert manifest["id"] == other_id
    assert manifest["bots"][0]["botId"] == APP_ID


def test_same_inputs_give_identical_bytes(tmp_path: Path) -> None:
    args = {"app_id": APP_ID, "sso_resource": None, "domains": [DOMAIN], "version": "1.0.0"}
    first = build_package(**args, out_path=tmp_path / "a.zip")  # type: ignore[arg-type]
    second = build_package(**args, out_path=tmp_path / "b.zip")  # type: ignore[arg-type]
    assert first.read_bytes() == second.read_bytes()


def test_bad_app_id_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    out.write_bytes(b"previous package")
    with pytest.raises(ManifestInvalid) as caught:
        build_package(
            app_id="not-a-guid", sso_resource=None, domains=[DOMAIN], version="1.0.0", out_path=out
        )
    paths = {problem.path for problem in caught.value.problems}
    assert {"$.id", "$.bots[0].botId", "$.webApplicationInfo.id"} <= paths
    assert out.read_bytes() == b"previous package"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.zip"]  # no temp file left


@pytest.mark.parametrize(
    ("version", "accepted"),
    [("1.0.0", True), ("10.20.30", True), ("1.0", False), ("01.0.0", False), ("1.0.0-beta", False)],
)
def test_app_version_must_be_semver(tmp_path: Path, version: str, accepted: bool) -> None:
    kwargs = {
        "app_id": APP_ID,
        "sso_resource": None,
        "domains": [DOMAIN],
        "version": version,
        "out_path": tmp_path / "app.zip",
    }
    if accepted:
        assert build_package(**kwargs).exists()  # type: ignore[arg-type]
        return
    with pytest.raises(ManifestInvalid) as caught:
        build_package(**kwargs)  # type: ignore[arg-type]
    assert [p.path for p in caught.value.problems] == ["$.version"]


def test_domain_with_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        build_package(
            app_id=APP_ID,
            sso_resource=None,
            domains=["https://x.example/bot"],
            version="1.0.0",
            out_path=tmp_path / "app.zip",
            developer=DeveloperInfo("D", "https://d/", "https://d/p", "https://d/t"),
        )
    (problem,) = caught.value.problems
    assert problem.path == "$.validDomains[0]"
    assert "without scheme" in problem.message


def test_bad_custom_icons_are_refused(tmp_path: Path) -> None:
    small = tmp_path / "small.png"
    small.write_bytes(png(Image.new("RGB", (96, 96), (10, 20, 30))))
    opaque = tmp_path / "opaque.png"
    opaque.write_bytes(png(Image.new("RGBA", (32, 32), (0, 0, 0, 255))))
    with pytest.raises(ManifestInvalid) as caught:
        build_package(
            app_id=APP_ID,
            sso_resource=None,
            domains=[DOMAIN],
            version="1.0.0",
            out_path=tmp_path / "app.zip",
            color_icon=small,
            outline_icon=opaque,
        )
    lines = [str(problem) for problem in caught.value.problems]
    assert "$.icons.color: color.png: is 96×96 px; Teams needs 192×192" in lines
    assert any(line.startswith("$.icons.outline: outline.png: ") for line in lines)
    assert not (tmp_path / "app.zip").exists()


def test_project_rules_hold_without_the_schema() -> None:
    manifest = build_manifest(app_id=APP_ID, sso_resource=None, domains=[DOMAIN], version="1.0.0")
    assert manifest_problems(manifest, None) == []
    manifest["manifestVersion"] = "1.29"
    manifest["bots"][0]["scopes"] = ["team"]
    manifest["validDomains"] = [DOMAIN]
    manifest["webApplicationInfo"]["id"] = "11111111-2222-4333-8444-555555555555"
    assert [p.path for p in manifest_problems(manifest, None)] == [
        "$.bots[0].scopes",
        "$.manifestVersion",
        "$.validDomains",
        "$.webApplicationInfo.id",
    ]


def test_without_domain_or_developer_the_manifest_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="domain"):
        build_manifest(app_id=APP_ID, sso_resource=None, domains=[], version="1.0.0")
