"""The API reference builds from the docstrings, every public name has its
anchor, every link resolves, and the builder fails on a broken docstring.

This is how CI builds the docs: a docstring that breaks a rule of
`docs/build.py` fails this test."""

import html.parser
import importlib.util
import pathlib
import sys
import textwrap

import pytest

import keras_meta

BUILDER = pathlib.Path(__file__).resolve().parents[1] / "docs" / "build.py"


def load_builder():
    spec = importlib.util.spec_from_file_location("docs_build", BUILDER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_builder()


class Links(html.parser.HTMLParser):
    """The ids and hrefs of one HTML page."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.hrefs = set(), []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.hrefs.append(attrs["href"])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    output = tmp_path_factory.mktemp("api")
    status = build.main([f"--output={output}"])
    return output, status


def test_the_docstrings_follow_the_rules(site, capsys):
    _, status = site
    assert status == 0, "docs/build.py found docstring problems (see the captured stderr)"


def test_every_public_name_has_its_anchor_and_is_in_the_index(site):
    output, _ = site
    index = (output / "index.html").read_text(encoding="utf-8")
    pages = {page.name: Links(page.read_text(encoding="utf-8")) for page in output.glob("*.html")}
    assert len(keras_meta.__all__) > 20
    for name in keras_meta.__all__:
        full = f"keras_meta.{name}"
        assert f"<code>{full}</code>" in index, full
        obj = getattr(keras_meta, name)
        if hasattr(obj, "__path__") or type(obj).__name__ == "module":
            assert f"{full}.html" in pages, full
        else:
            assert full in pages["keras_meta.html"].ids, full
    assert "keras_meta.data.omniglot_episodes" in pages["keras_meta.data.html"].ids


def test_every_link_resolves(site):
    output, _ = site
    pages = {page.name: Links(page.read_text(encoding="utf-8")) for page in output.glob("*.html")}
    broken = []
    for name, links in pages.items():
        for href in links.hrefs:
            page, _, anchor = href.partition("#")
            if page not in pages or (anchor and anchor not in pages[page].ids):
                broken.append(f"{name}: {href}")
    assert len(pages) > 10
    assert not broken, broken
    assert (output / "style.css").stat().st_size > 0


def test_references_in_code_spans_link_to_their_pages(site):
    output, _ = site
    maml = (output / "keras_meta.html").read_text(encoding="utf-8")
    assert ('href="keras_meta.update_rules.html#keras_meta.update_rules.UpdateRule"'
            in maml)


def test_a_broken_docstring_fails_the_build_naming_the_object(tmp_path, monkeypatch, capsys):
    function = keras_meta.stats.mean_confidence_interval
    monkeypatch.setattr(function, "__doc__", textwrap.dedent("""\
        Mean of `km.stats.no_such_function`'s results.

        Args:
          value: a misspelt argument.
        """))
    assert build.main([f"--output={tmp_path}"]) == 1
    errors = capsys.readouterr().err
    where = "keras_meta/stats.py:8: keras_meta.stats.mean_confidence_interval"
    assert f"{where}: `km.stats.no_such_function` names no documented" in errors
    assert f"{where}: Args names `value`, which is not an argument" in errors
    assert f"{where}: argument `values` is not described in Args" in errors
    assert f"{where}: no `Example:` section" in errors


def test_a_failing_example_fails_the_build(monkeypatch):
    monkeypatch.setattr(keras_meta.stats.mean_confidence_interval, "__doc__", textwrap.dedent("""\
        Mean.

        Args:
          values: results.

        Example:

        ```python
        km.stats.mean_confidence_interval([1.0])  # fewer than 2 values
        ```
        """))
    api = build.Api()
    monkeypatch.setattr(api, "entries", {n: e for n, e in api.entries.items()
                                         if n == "keras_meta.stats.mean_confidence_interval"})
    problems, seconds = build.run_examples(api)
    assert list(seconds) == ["keras_meta.stats.mean_confidence_interval"]
    assert len(problems) == 1 and "example raised ValueError" in problems[0], problems


def test_new_modules_are_found_and_unimportable_ones_are_named(tmp_path, monkeypatch):
    package = tmp_path / "fakemeta"
    (package / "tune").mkdir(parents=True)
    (package / "__init__.py").write_text('"""Fake."""\n__all__ = []\n')
    (package / "tune" / "__init__.py").write_text(
        '"""Tuning."""\n__all__ = ["search"]\n\ndef search():\n    """Searches."""\n')
    (package / "needs_extra.py").write_text("import no_such_dependency_of_fakemeta\n")
    (package / "_private.py").write_text("import no_such_dependency_of_fakemeta\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    api = build.Api("fakemeta")
    assert list(api.modules) == ["fakemeta", "fakemeta.tune"]
    assert "fakemeta.tune.search" in api.entries
    assert list(api.skipped) == ["fakemeta.needs_extra"]
    assert "No module named 'no_such_dependency_of_fakemeta'" in api.skipped["fakemeta.needs_extra"]
    for name in [m for m in sys.modules if m.startswith("fakemeta")]:
        del sys.modules[name]


@pytest.mark.slow
def test_every_example_runs():
    problems, seconds = build.run_examples(build.Api())
    assert len(seconds) == len([e for e in build.Api().entries.values() if e.kind != "constant"])
    assert not problems, problems
