"""Message formatting (issue 14, item 3): ui.markup.render, a pure text -> rich Text."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.text import Text

from p2pchat.ui.markup import BOLD, CODE, CODE_BLOCK, ITALIC, STRIKE, render


def styles_at(text: Text, fragment: str) -> set[str]:
    """Every style covering the first character of ``fragment`` in ``text``."""
    at = text.plain.index(fragment)
    return {str(s.style) for s in text.spans if s.start <= at < s.end}


def test_inline_spans_are_styled_and_their_markers_hidden() -> None:
    text = render("a *bold* and _it_ and ~gone~ and `co*de*`")
    assert text.plain == "a bold and it and gone and co*de*"
    assert BOLD in styles_at(text, "bold")
    assert ITALIC in styles_at(text, "it ")
    assert STRIKE in styles_at(text, "gone")
    assert CODE in styles_at(text, "co*de*")
    assert BOLD not in styles_at(text, "de*")  # nothing is formatted inside code


def test_markdown_double_asterisks_are_bold_too() -> None:
    text = render("Hi **there** and *you*; 2**10 stays")
    assert text.plain == "Hi there and you; 2**10 stays"
    assert BOLD in styles_at(text, "there")
    assert BOLD in styles_at(text, "you")
    for typed in ("*****", "**a***", "***"):  # runs of asterisks stay as typed
        assert render(typed).plain == typed


def test_nested_spans() -> None:
    text = render("*bold _both_*")
    assert text.plain == "bold both"
    assert {BOLD, ITALIC} <= styles_at(text, "both")


@pytest.mark.parametrize(
    "plain",
    [
        "snake_case_name and __init__",
        "2*3*4 = 24",
        "a * b * c",
        "a *not closed",
        "_ spaced _",
        "~/path/to~file",
        "https://example.org/a_b_c*d*",
        "price: ~5 ~10",
    ],
)
def test_ordinary_text_stays_as_written(plain: str) -> None:
    text = render(plain)
    assert text.plain == plain
    assert not any(str(s.style) in (BOLD, ITALIC, STRIKE, CODE) for s in text.spans)


def test_link_keeps_its_characters_and_stays_a_link() -> None:
    text = render("see *this* https://example.org/a_b_c")
    assert text.plain == "see this https://example.org/a_b_c"
    assert any("link" in str(s.style) for s in text.spans)


def test_fenced_code_block_quote_and_lists() -> None:
    text = render("intro\n```python\nx = *1*\n```\n> quoted *word*\n- one\n* two\n3. three")
    assert text.plain.split("\n") == [
        "intro",
        "x = *1*",
        "▍ quoted word",
        "• one",
        "• two",
        "3. three",
    ]
    assert CODE_BLOCK in styles_at(text, "x = ")
    assert BOLD in styles_at(text, "word")


def test_unclosed_fence_formats_the_rest_as_code() -> None:
    text = render("```\nstill *code*")
    assert text.plain == "still *code*"
    assert CODE_BLOCK in styles_at(text, "still")


@pytest.mark.parametrize(
    "hostile",
    [
        "[bold]x[/]",
        "[@click=quit]y[/]",
        "[link=https://evil.example]z[/link]",
        "*[@click=app.quit]bold click[/]*",
        "`[red]code[/red]`",
        "> [blink]quote[/]",
    ],
)
def test_peer_markup_is_never_interpreted(hostile: str) -> None:
    text = render(hostile)
    console = Console(width=80, record=True, color_system=None)
    console.print(text)
    shown = console.export_text()
    for tag in ("[bold]", "[@click=quit]", "[link=", "[@click=app.quit]", "[red]", "[blink]"):
        if tag in hostile:
            assert tag in shown
    assert not any(
        getattr(s.style, "meta", None) for s in text.spans if not isinstance(s.style, str)
    )
    assert all("click" not in str(s.style) for s in text.spans)


def test_control_characters_are_shown_not_sent() -> None:
    text = render("*\x1b[2Jclear* \u202eevil")
    assert "\x1b" not in text.plain
    assert "\u202e" not in text.plain
    assert "␛[2Jclear" in text.plain
