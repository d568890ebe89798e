"""The README and docs/ stay in step with the code they document, and with each other."""

import re
from pathlib import Path

from pipeline.settings import markdown_table

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
CONFIGURATION = REPO / "docs" / "configuration.md"
DOCUMENTS = [README, REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]

#: A Markdown link to a file of the repository or a heading, with its optional #anchor.
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")


def anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the document's headings."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_configuration_table_matches_the_settings() -> None:
    text = CONFIGURATION.read_text()
    after_start = text.split("<!-- settings-table:start -->\n", 1)[1]
    table = after_start.split("\n<!-- settings-table:end -->")[0]
    assert table == markdown_table(), "regenerate it with: python -m pipeline.settings"


def test_links_between_the_documents_resolve() -> None:
    broken = []
    for document in DOCUMENTS:
        for path, anchor in LINK.findall(document.read_text()):
            target = document.parent / path if path else document
            if not target.exists() or (anchor and target.suffix == ".md"
                                       and anchor not in anchors(target)):
                broken.append(f"{document.relative_to(REPO)}: {path}#{anchor}")
    assert not broken, broken


def test_the_readme_stays_short() -> None:
    """What a user needs fits in 200 lines; the rest has its home in docs/."""
    assert len(README.read_text().splitlines()) <= 200
