"""The project's icons and the icon rules of Teams (sizes, outline white on transparent)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from manifest_helpers import png
from PIL import Image

from manifest.build import COLOR_ICON_FILE, ICON_DIR, OUTLINE_ICON_FILE
from manifest.draw_icons import render_color_icon, render_outline_icon, write_icons
from manifest.validate import icon_problems


def _outline_base() -> Image.Image:
    return render_outline_icon().copy()


def test_committed_icons_are_the_generators_output(tmp_path: Path) -> None:
    # Compared as pixels, not bytes: the compressed bytes depend on the zlib build.
    write_icons(tmp_path)
    for name in (COLOR_ICON_FILE, OUTLINE_ICON_FILE):
        with Image.open(ICON_DIR / name) as committed, Image.open(tmp_path / name) as fresh:
            assert committed.size == fresh.size
            assert committed.convert("RGBA").tobytes() == fresh.convert("RGBA").tobytes(), (
                f"{name} is stale: run `python -m manifest.draw_icons`"
            )


def test_project_icons_follow_the_teams_rules() -> None:
    assert (
        icon_problems((ICON_DIR / COLOR_ICON_FILE).read_bytes(), role="color", path="$.icons.color")
        == []
    )
    assert (
        icon_problems(
            (ICON_DIR / OUTLINE_ICON_FILE).read_bytes(), role="outline", path="$.icons.outline"
        )
        == []
    )
    with Image.open(ICON_DIR / COLOR_ICON_FILE) as color:
        assert color.size == (192, 192)
        # A solid background: the corner is the accent colour, fully opaque.
        assert color.convert("RGBA").getpixel((0, 0)) == (0x2F, 0x5F, 0xD0, 255)
    outline = render_outline_icon()
    alphas = outline.getchannel("A").tobytes()
    # The symbol is visible, anti-aliased, and the corners are transparent.
    assert max(alphas) == 255 and min(alphas) == 0
    assert any(0 < alpha < 255 for alpha in alphas)


@pytest.mark.parametrize(
    ("role", "size", "expected"),
    [
        ("color", (100, 100), "is 100×100 px; Teams needs 192×192"),
        ("color", (192, 191), "is 192×191 px; Teams needs 192×192"),
        ("outline", (48, 48), "is 48×48 px; Teams needs 32×32"),
        ("color32x32", (192, 192), "is 192×192 px; Teams needs 32×32"),
    ],
)
def test_wrong_icon_size_is_named(role: str, size: tuple[int, int], expected: str) -> None:
    image = Image.new("RGBA", size, (255, 255, 255, 0))
    image.putpixel((0, 0), (255, 255, 255, 255))
    problems = icon_problems(png(image), role=role, path=f"$.icons.{role}")  # type: ignore[arg-type]
    assert [(p.path, p.message) for p in problems] == [(f"$.icons.{role}", expected)]


def test_outline_with_a_coloured_pixel_fails_and_names_it() -> None:
    image = _outline_base()
    image.putpixel((3, 5), (255, 0, 0, 255))
    problems = icon_problems(png(image), role="outline", path="$.icons.outline")
    assert len(problems) == 1
    assert problems[0].path == "$.icons.outline"
    assert "x=3 y=5: rgba(255, 0, 0, 255)" in problems[0].message


def test_outline_half_transparent_grey_is_not_white() -> None:
    image = _outline_base()
    image.putpixel((0, 0), (200, 200, 200, 128))
    (problem,) = icon_problems(png(image), role="outline", path="$.icons.outline")
    assert "1 pixel(s) are neither white nor fully transparent" in problem.message


def test_outline_on_an_opaque_background_fails() -> None:
    background = Image.new("RGBA", (32, 32), (0, 0, 0, 255))
    background.alpha_composite(render_outline_icon())
    problems = icon_problems(png(background), role="outline", path="$.icons.outline")
    messages = " | ".join(p.message for p in problems)
    assert "neither white nor fully transparent" in messages
    assert "has no fully transparent pixel" in messages


def test_outline_without_an_alpha_channel_fails() -> None:
    problems = icon_problems(
        png(render_outline_icon().convert("RGB")), role="outline", path="$.icons.outline"
    )
    assert [p.path for p in problems] == ["$.icons.outline"]
    assert "has no transparency" in problems[0].message


def test_outline_that_is_all_white_fails() -> None:
    opaque_white = Image.new("RGBA", (32, 32), (255, 255, 255, 255))
    (problem,) = icon_problems(png(opaque_white), role="outline", path="$.icons.outline")
    assert "has no fully transparent pixel" in problem.message


def test_outline_that_shows_nothing_fails() -> None:
    empty = Image.new("RGBA", (32, 32), (255, 255, 255, 0))
    (problem,) = icon_problems(png(empty), role="outline", path="$.icons.outline")
    assert "fully transparent; it shows nothing" in problem.message


def test_palette_outline_with_transparency_chunk_passes() -> None:
    # A palette PNG with a tRNS chunk is a legitimate way to write white-on-transparent.
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([0, 0, 0, 255, 255, 255])
    for x in range(8, 24):
        palette.putpixel((x, 16), 1)
    data = png(palette, transparency=0)
    assert icon_problems(data, role="outline", path="$.icons.outline") == []
    # The same file with the transparent index pointing at white instead is opaque everywhere.
    assert icon_problems(png(palette, transparency=1), role="outline", path="$.icons.outline")


def test_non_png_and_garbage_are_named() -> None:
    jpeg = Image.new("RGB", (192, 192), (1, 2, 3))
    buffer = io.BytesIO()
    jpeg.save(buffer, format="JPEG")
    (problem,) = icon_problems(buffer.getvalue(), role="color", path="$.icons.color")
    assert problem.message == "must be a PNG, found JPEG"
    (problem,) = icon_problems(b"not an image", role="color", path="$.icons.color")
    assert problem.path == "$.icons.color" and "not a readable image" in problem.message


def test_truncated_png_is_named() -> None:
    data = png(render_color_icon())
    (problem,) = icon_problems(data[: len(data) // 2], role="color", path="$.icons.color")
    assert problem.path == "$.icons.color" and "damaged" in problem.message


def _png_header_only(width_px: int, height_px: int) -> bytes:
    """A PNG that declares a size but carries (almost) no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width_px, height_px, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("width_px", "expected"),
    [
        (10_000, "is 10000×10000 px; Teams needs 192×192"),  # above Pillow's warning threshold
        (60_000, "is far larger than 192×192 px"),  # above Pillow's refusal threshold
    ],
)
def test_huge_icon_is_refused_without_decoding(width_px: int, expected: str) -> None:
    (problem,) = icon_problems(
        _png_header_only(width_px, width_px), role="color", path="$.icons.color"
    )
    assert (problem.path, problem.message) == ("$.icons.color", expected)
