"""The README stays in step with the code it documents."""

from pathlib import Path

from pipeline.settings import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_configuration_table_matches_the_settings() -> None:
    text = README.read_text()
    table = text.split("<!-- settings-table:start -->\n", 1)[1].split("\n<!-- settings-table:end -->")[0]
    assert table == markdown_table(), "regenerate it with: python -m pipeline.settings"
