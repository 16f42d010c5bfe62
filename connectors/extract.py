"""Text out of HTML and PDF, shared by the docs and rss connectors.

HTML keeps only what a reader sees (scripts, styles and page chrome dropped); PDF text comes
from pypdf page by page. A parse failure raises ``ValueError`` with the cause so the caller
can turn it into a per-document failure naming the file or URL.
"""

from __future__ import annotations

import io
import re

from bs4 import BeautifulSoup, Tag

_INVISIBLE = ("script", "style", "noscript", "template", "svg", "iframe", "head")
_CHROME = ("nav", "header", "footer", "aside", "form")
_BLOCKS = (
    "p",
    "div",
    "br",
    "li",
    "tr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "pre",
    "blockquote",
    "section",
    "article",
    "main",
    "table",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "hr",
    "figure",
    "figcaption",
    "title",
)
_BLANK_RUNS = re.compile(r"\n\s*\n\s*\n+")
_SPACES = re.compile(r"[ \t\xa0]+")


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _visible_text(root) -> str:
    """Text with line breaks only at block elements (inline tags like <b> stay inside their sentence)."""
    for tag in root.find_all(_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    return _tidy(root.get_text())


def html_title(html: str) -> str:
    soup = BeautifulSoup(html, "html.parser")
    return soup.title.get_text(strip=True) if soup.title else ""


def html_to_text(html: str, *, main_only: bool = False) -> str:
    """Visible text of an HTML page; ``main_only`` keeps the article/main element and drops site chrome."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_INVISIBLE):
        tag.decompose()
    root: Tag = soup
    if main_only:
        for tag in soup(_CHROME):
            tag.decompose()
        root = soup.find("article") or soup.find("main") or soup.body or soup
    return _visible_text(root)


def pdf_to_text(data: bytes) -> str:
    """Text of every page; raises ValueError when the file is not a readable PDF."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        encrypted = reader.is_encrypted
        pages = [] if encrypted else [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many unrelated types on malformed input
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    if encrypted:
        raise ValueError("PDF is encrypted")
    return _tidy("\n\n".join(pages))
