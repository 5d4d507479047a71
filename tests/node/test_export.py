"""Exports (issue 14, item 5): peer values are inert in every format (node/export.py)."""

from __future__ import annotations

import json

from p2pchat.node.export import (
    ExportHeader,
    ExportItem,
    picture_mime,
    render_html,
    render_json,
    render_markdown,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
HEADER = ExportHeader('Team "<b>" & co', "group", "ab" * 16, 1_700_000_000_000)


def item(
    text: str, author: str = "mallory", picture: tuple[str, bytes] | None = None
) -> ExportItem:
    return ExportItem("00" * 16, author, "x" * 52, 1_700_000_000_000, "text", text, picture)


def test_only_allowed_rasters_with_their_signature_are_embedded() -> None:
    assert picture_mime("image/png", PNG) == "image/png"
    assert picture_mime("IMAGE/PNG", PNG) == "image/png"
    assert picture_mime("image/svg+xml", b"<svg onload=alert(1)>") is None
    assert picture_mime("image/png", b"<svg onload=alert(1)>") is None  # lying mime
    assert picture_mime("image/webp", b"RIFF\x00\x00\x00\x00WAVE") is None
    assert picture_mime("text/html", PNG) is None


def test_html_escapes_names_texts_and_picture_captions() -> None:
    hostile = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    page = "".join(render_html(HEADER, [item(hostile, author=hostile, picture=("image/png", PNG))]))
    assert "<script>" not in page
    assert "onerror=alert(2)>" not in page
    assert page.count("&lt;script&gt;") >= 3  # author, text, and the img alt
    assert "Team &quot;&lt;b&gt;&quot; &amp; co" in page
    assert "data:image/png;base64," in page
    assert "default-src 'none'" in page  # and no script could run anyway


def test_markdown_text_cannot_become_a_link_or_an_image() -> None:
    doc = "".join(render_markdown(HEADER, [item("![x](http://evil/t.png) [y](javascript:z)")]))
    assert "](" not in doc
    assert "\\!\\[x\\]\\(http://evil/t\\.png\\)" in doc


def test_json_round_trips_the_exact_text() -> None:
    text = 'line\n"quoted" \x1b[31m 東京'
    data = json.loads("".join(render_json(HEADER, [item(text), item("second")])))
    assert [m["text"] for m in data["messages"]] == [text, "second"]
    assert data["room"]["title"] == HEADER.title
