"""Shared constants and small zip helpers for the Teams app package tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_ID = "6c1f8a52-3d4e-4b7a-9c0d-2e5f7a9b1c3d"
DOMAIN = "reviews.contoso.example"


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def manifest_of(path: Path) -> dict[str, Any]:
    loaded = json.loads(read_zip(path)["manifest.json"])
    assert isinstance(loaded, dict)
    return loaded


def png(image: Image.Image, **save_args: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_args)
    return buffer.getvalue()
