"""Every Markdown page renders as written: code fences closed, and every relative link points at a
file that exists (and at a heading that exists in it, for `page.md#heading` links)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *ROOT.glob("docs/**/*.md"),
                *(p for folder in ("k1core", "lrl", "backends", "bench", "results") for p in (ROOT / folder).rglob("*.md"))])
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")


def prose_lines(text: str) -> tuple[list[str], str | None]:
    """The lines outside code fences, and what is wrong with the fences (None if nothing).

    A fence left open at the end is wrong, and so is an opening fence with a language inside an open
    one (```python ... ```bash): the first fence was never closed and swallows the text between.
    """
    lines, fence, opened = [], None, ""
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence, opened = match.group(1), f"line {number}: {line.strip()}"
            else:
                lines.append(line)
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            if line.strip()[len(match.group(1)):].strip():
                return lines, f"fence opened at {opened} is still open at line {number}: {line.strip()}"
            fence = None
    return lines, (f"fence never closed, opened at {opened}" if fence is not None else None)


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -N for repeats."""
    seen, found = {}, set()
    for line in prose_lines(page.read_text(encoding="utf-8"))[0]:
        if line.startswith("#"):
            title = INLINE_CODE.sub(lambda m: m.group()[1:-1], line.lstrip("#").strip())
            slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    lines, _ = prose_lines(page.read_text(encoding="utf-8"))
    targets = [m.group(1) for line in lines for m in LINK.finditer(INLINE_CODE.sub("", line))]
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def test_the_front_page_and_the_docs_are_checked():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/lrl.md", "docs/contributing.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_code_fences_are_closed(page):
    _, problem = prose_lines(page.read_text(encoding="utf-8"))
    assert problem is None, f"{page.relative_to(ROOT)}: {problem}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_an_unclosed_fence_and_a_broken_link_are_caught(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\n[ok](#top) [bad](missing.md) [gone](#nowhere)\n\n```python\nx = 1\n")
    assert prose_lines(page.read_text())[1] == "fence never closed, opened at line 5: ```python"
    swallowed = "```python\nx = 1\n\n## Next\n\n```bash\nls\n```\n"
    assert prose_lines(swallowed)[1] == "fence opened at line 1: ```python is still open at line 6: ```bash"
    assert relative_links(page) == ["#top", "missing.md", "#nowhere"]
    assert anchors(page) == {"top"}
