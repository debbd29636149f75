"""The user documentation stays short, self-contained and true: the README fits on a few screens,
no link leaves the repository, every relative link resolves, and the README's example runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted([README, *(ROOT / "docs").rglob("*.md")])

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_BARE_URL = re.compile(r"(?<![\w/])(?:https?://|www\.)\S+")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (where URLs are plain text, not links)."""
    return _INLINE_CODE.sub("", _FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Every link target of a Markdown text: inline links and images, reference definitions, autolinks."""
    body = prose(text)
    return [*_INLINE_LINK.findall(body), *_REF_DEF.findall(body), *_AUTOLINK.findall(body)]


def bare_urls(text: str) -> list[str]:
    """URLs in prose outside any link syntax (renderers turn them into links too)."""
    body = prose(text)
    for pattern in (_INLINE_LINK, _REF_DEF, _AUTOLINK):
        body = pattern.sub("", body)
    return _BARE_URL.findall(body)


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_link_parser_sees_what_a_renderer_sees():
    text = (
        'See [a](docs/a.md), ![plot](img/p.png "title") and <https://example.org>.\n'
        "[ref]: http://example.com/x\n"
        "`[not](a-link.md)` and a bare https://example.net in prose.\n"
        "```bash\ncurl http://127.0.0.1:8000/docs  # [x](y.md)\n```\n"
    )
    assert links(text) == ["docs/a.md", "img/p.png", "http://example.com/x", "https://example.org"]
    assert bare_urls(text) == ["https://example.net"]


def test_the_documentation_exists():
    names = {_rel(p) for p in DOCS}
    for page in (
        "docs/index.md",
        "docs/architecture.md",
        *(f"docs/guide/{g}.md" for g in ("ingest", "models", "evaluation", "recommendations", "serving", "temporal")),
        "docs/benchmarks/index.md",
        "docs/benchmarks/log.md",
    ):
        assert page in names, page


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= 200, f"README.md has {n} lines; move detail into docs/"


@pytest.mark.parametrize("page", DOCS, ids=_rel)
def test_no_link_leaves_the_repository(page: Path):
    text = page.read_text(encoding="utf-8")
    outside = [t for t in links(text) if _SCHEME.match(t) or t.startswith("//")]
    bare = bare_urls(text)
    assert not outside and not bare, f"{_rel(page)} links outside the repository: {outside + bare}"


@pytest.mark.parametrize("page", DOCS, ids=_rel)
def test_relative_links_resolve_to_files(page: Path):
    missing = []
    for target in links(page.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path or _SCHEME.match(target):
            continue  # a same-page anchor (outside links fail the test above)
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (page.parent / path)
        resolved = resolved.resolve()
        if not resolved.is_file() or ROOT not in resolved.parents:
            missing.append(target)
    assert not missing, f"{_rel(page)}: links that resolve to no file in the repository: {missing}"


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) == 1, "the README holds one Python example"
    code = blocks[0]
    assert "from chronorec import EventLog, SASRec, leave_one_out, evaluate_ranking, load" in code
    assert len([line for line in code.splitlines() if line.strip()]) <= 12
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    namespace: dict[str, object] = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the example is ours
    # it did what its comments say: ingested every row, evaluated, saved and reloaded the model
    log = namespace["log"]
    assert log.report.rows_read == log.report.rows_kept == len(log) > 0
    assert (tmp_path / "models" / "sasrec").is_dir()
    assert (tmp_path / "events.csv").is_file()
    from chronorec import load

    recs = load(tmp_path / "models" / "sasrec").recommend(users=["u0001"], k=5)
    assert list(recs.columns[:4]) == ["user_id", "item_id", "score", "rank"]
    assert recs["rank"].tolist() == [1, 2, 3, 4, 5]
