"""Every Python snippet of the README runs as written (those that need local full-size weights
are only compiled: their files cannot exist here)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_snippets():
    assert len(SNIPPETS) >= 4


@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(index):
    code = SNIPPETS[index]
    compiled = compile(code, f"README.md snippet {index}", "exec")
    if "weights/" in code:
        return
    exec(compiled, {})
