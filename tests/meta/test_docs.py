"""The documentation holds together: every link resolves, the README stays short, every
alert's runbook_url lands on a section of docs/alerts.md, and every metric served is
documented."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
README_MAX_BYTES = 20_000
DOC_FILES = (
    "alerts.md",
    "configuration.md",
    "drift.md",
    "guarantees.md",
    "metrics.md",
    "performance.md",
    "security.md",
    "stack.md",
)
RULE_FILES = sorted((ROOT / "prometheus" / "rules").glob("*.yml"))
GOLDEN_METRICS = ROOT / "tests" / "golden" / "metrics.prom"

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Citations of documents that are not in the repository ("SPEC 6", "issue 12").
STALE_CITATION = re.compile(r"\b(?:spec|issue)\s+(?:section\s+)?#?\d+", re.IGNORECASE)


def markdown_files() -> list[Path]:
    return [README, CONTRIBUTING, *sorted(DOCS.glob("*.md"))]


def prose(path: Path) -> str:
    """The file's text without fenced code blocks, where `#` lines are not headings."""
    return FENCE.sub("", path.read_text(encoding="utf-8"))


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: the text as rendered (no code marks, link text
    only), lowercased, punctuation other than '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """Every anchor of a Markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    result = set()
    for heading in HEADING.findall(prose(path)):
        slug = github_slug(heading)
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        result.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(result)


def relative_links(path: Path) -> list[str]:
    text = INLINE_CODE.sub("", prose(path))
    return [
        target
        for target in LINK.findall(text)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE)
    ]


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_anchor_resolves(path: Path) -> None:
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


def test_readme_is_short() -> None:
    size = README.stat().st_size
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move detail to docs/"


def test_docs_exist_and_the_readme_links_each() -> None:
    readme_links = {target.partition("#")[0] for target in relative_links(README)}
    for name in DOC_FILES:
        assert (DOCS / name).is_file(), f"docs/{name} is missing"
        assert f"docs/{name}" in readme_links, f"README.md does not link docs/{name}"
    assert CONTRIBUTING.is_file()
    assert "CONTRIBUTING.md" in readme_links


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_of_documents_outside_the_repository(path: Path) -> None:
    found = STALE_CITATION.findall(path.read_text(encoding="utf-8"))
    assert not found, f"{path.relative_to(ROOT)} cites {found}; state the rule itself"


def test_every_runbook_url_lands_on_a_section_of_the_alerts_doc() -> None:
    urls = {}
    for rule_file in RULE_FILES:
        for group in yaml.safe_load(rule_file.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    urls[rule["alert"]] = rule["annotations"]["runbook_url"]
    assert urls
    for alert, url in urls.items():
        page, _, anchor = url.partition("#")
        assert page.endswith("/docs/alerts.md"), f"{alert}: {url}"
        assert anchor == alert.lower(), f"{alert}: {url}"
        assert anchor in anchors(DOCS / "alerts.md"), f"{alert}: no section #{anchor}"


def test_every_metric_served_is_documented() -> None:
    """Every metric family of the golden /metrics output is in docs/metrics.md."""
    names = set(re.findall(r"^(mlmodel_\w+?)(?:_created)?[{ ]", GOLDEN_METRICS.read_text(), re.M))
    assert names
    documented = (DOCS / "metrics.md").read_text(encoding="utf-8")
    missing = sorted(name for name in names if f"`{name}`" not in documented)
    assert not missing, f"metrics not in docs/metrics.md: {missing}"
