"""The README and the docs stay true: the README's opening commands, CI calling them, every
setting documented, digests and figures current, the README short, every relative link alive."""

from __future__ import annotations

import re

import pytest

from harness import ROOT
from model_api.config import Settings as ModelApiSettings
from web_api.config import Settings as WebApiSettings

README = (ROOT / "README.md").read_text()
DOCS = sorted((ROOT / "docs").glob("*.md"))
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text()  # the settings table
API_DOC = (ROOT / "docs" / "api.md").read_text()  # the bad-input table
README_MAX_LINES = 300


def opening_commands() -> list[str]:
    block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert block, "the README opens with a bash block"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_start_and_test() -> None:
    assert README.index("```bash") < README.index("##"), "the commands come first"
    assert opening_commands() == ["./start_all.sh cli mnist", "./scripts/test.sh"]
    for command in opening_commands():
        script = ROOT / command.split()[0]
        assert script.is_file() and script.stat().st_mode & 0o111, f"{script} is executable"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.strip() == opening_commands()[1] for line in ci.splitlines())


@pytest.mark.parametrize("settings", [ModelApiSettings, WebApiSettings])
def test_every_setting_is_documented(settings) -> None:
    for name, field in settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or []
        names = [*aliases, f"MLSERVE_{name.upper()}"]
        assert any(f"`{env}`" in CONFIGURATION for env in names), (
            f"{names} missing from docs/configuration.md"
        )


def test_example_output_matches_the_shipped_model_digest() -> None:
    from model_api.model_identity import folder_digests

    digest = folder_digests(ROOT / "models", "mnist")["1"]
    assert '"version": "1"' in README
    assert f'"digest": "{digest}"' in README, (
        "re-run the curl example after changing the model (weights, config or preprocessing)"
    )
    # Every digest the README and the docs show, whole or short, is the shipped mnist's.
    shown = set()
    for text in [README, *(doc.read_text() for doc in DOCS)]:
        shown |= set(re.findall(r'"digest": "([0-9a-f]{64})"', text))
        shown |= set(re.findall(r"digest `?([0-9a-f]{12})\b", text))
    assert shown and all(digest.startswith(d) for d in shown), f"stale digests: {shown}"


def test_bad_input_table_is_generated_from_the_tests_cases() -> None:
    from harness.bad_inputs import markdown_table

    assert markdown_table() in API_DOC, "regenerate into docs/api.md: python -m harness.bad_inputs"


@pytest.mark.parametrize(
    ("model", "field"),
    [
        ("mnist", "heldout_accuracy"),
        ("mnist", "rendered_png_accuracy"),
        ("leukemia", "heldout_accuracy"),
    ],
)
def test_model_figures_match_the_cards(model: str, field: str) -> None:
    import json

    card = (ROOT / "models" / model / "README.md").read_text()
    figures = json.loads(re.search(r"<!-- figures-json: (\{.*?\}) -->", card).group(1))
    row = next(line for line in README.splitlines() if line.startswith(f"| `{model}` |"))
    assert f"{figures[field]:.1f} %" in row, f"README's {model} figures are out of date"


def test_readme_is_short() -> None:
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines, at most {README_MAX_LINES}: move details into docs/"
    )


@pytest.mark.parametrize("doc", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_relative_links_resolve(doc) -> None:
    text = re.sub(r"^```.*?^```", "", doc.read_text(), flags=re.S | re.M)  # not in code blocks
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    relative = [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t) and t[0] != "#"]
    assert relative or doc.name != "README.md", "the README links to its documents"
    dead = [t for t in relative if not (doc.parent / t.split("#")[0]).exists()]
    assert not dead, f"{doc.relative_to(ROOT)} links to files that do not exist: {dead}"
