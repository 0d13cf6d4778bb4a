"""Every example the package shows runs: the docstrings' and docs/python.md's ``>>>`` sessions as doctests,
the README's Python block as a script (in a temporary directory: it saves a model)."""

import doctest
import os
import re

import pytest

import fairbits
import fairbits._estimator
import fairbits._pipeline
import fairbits._regressor
import fairbits.sweep

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


@pytest.mark.parametrize(
    "module", [fairbits, fairbits._estimator, fairbits._pipeline, fairbits._regressor, fairbits.sweep]
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_docs_python_md_session():
    result = doctest.testfile(
        os.path.join(REPO, "docs", "python.md"),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.failed == 0 and result.attempted >= 8


def test_readme_python_block(tmp_path, monkeypatch):
    pytest.importorskip("fairlearn")
    pytest.importorskip("sklearn")
    text = open(os.path.join(REPO, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})  # noqa: S102
    assert (tmp_path / "adult-model" / "config.json").exists()
