"""Builds the API reference of keras_meta from its docstrings, and checks them.

    python docs/build.py --output=docs/api [--run_examples]

writes one HTML page per public module, `index.html` with every public name,
and `style.css`; open `docs/api/index.html` in a browser. The exit status is
1, with one line per problem (`file:line: name: problem`), when a docstring
breaks the rules below; the pages are written either way.

What is public (documented):
  - the modules found by `pkgutil.walk_packages` under keras_meta that are
    `keras_meta` itself, define `__all__`, or are named in their parent
    package's `__all__`; other modules are implementation modules, whose
    public objects are documented where a public module exports them;
  - in each public module, the names of its `__all__`, or without one the
    names not starting with "_" that the module defines itself (functions and
    classes whose `__module__` is the module, and constants);
  - for each class, its public methods and properties defined by keras_meta
    (Keras's own methods are shown only where keras_meta overrides them).
Private (never documented): modules or names starting with "_";
`keras_meta.keras_internals` (the one module that touches Keras/TensorFlow
internals); `keras_meta.cli` and `keras_meta.train`, the implementation of the
command line `python -m keras_meta.train`, which the README documents by its
flags. A module that fails to import (an optional dependency missing) is
skipped and named, with the error, on stderr; the build goes on.

An object exported by several public modules (`keras_meta.MAML`,
`keras_meta.algorithms.MAML`) is documented once, in the first public module
in (depth, name) order, and the others link to it.

The rules, checked for every public class and function (file:line in each
message):
  - it has a docstring, with an `Example:` (or `Examples:`) section holding a
    ```python block;
  - its `Args:` section names only arguments of its signature (the
    constructor's for a class), and names every one of them except
    self/cls/*args/**kwargs; `a, b: ...` documents both; a dataclass's
    `Attributes:` document its fields; a class whose constructor another
    library defines (the TFDS builder) need not describe its arguments;
  - every code span that begins with a keras_meta name (`km.X`, `keras_meta.X`)
    names a documented module, object or method (also in module and method
    docstrings);
  - with `--run_examples`, each example runs without error in a fresh
    namespace holding `keras`, `km` (keras_meta), `np` and `tf`, in a
    temporary working directory.
"""

import argparse
import dataclasses
import html
import importlib
import inspect
import os
import pathlib
import pkgutil
import re
import sys
import tempfile
import time

PACKAGE = "keras_meta"
ALIAS = "km"
PRIVATE_MODULES = ("keras_meta.keras_internals", "keras_meta.cli", "keras_meta.train")
EXAMPLE_PRELUDE = "import keras\nimport keras_meta as km\nimport numpy as np\nimport tensorflow as tf\n"
ROOT = pathlib.Path(__file__).resolve().parents[1]

SECTION = re.compile(
    r"^(Args|Arguments|Returns|Yields|Raises|Attributes|Examples?|Note|Notes|References?|"
    r"Call arguments|Input shape|Output shape):\s*$")
LIST_SECTIONS = ("Args", "Arguments", "Attributes", "Raises", "Call arguments")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PACKAGE_NAME = re.compile(rf"^(?:{ALIAS}|{PACKAGE})(?:\.[A-Za-z_]\w*)*\b")
FENCE = re.compile(r"^```(\w*)\s*$")


class Entry:
    """One documented object: its public name, where it lives, and its page."""

    def __init__(self, name, obj, module):
        self.name, self.obj, self.module = name, obj, module
        self.short = name.rsplit(".", 1)[-1]

    @property
    def kind(self):
        if inspect.isclass(self.obj):
            return "class"
        if callable(self.obj):
            return "function"
        return "constant"


class Api:
    """The public modules of the package, their names and where each is documented."""

    def __init__(self, package=PACKAGE):
        self.package = package
        self.modules = {}  # public module name → module
        self.skipped = {}  # module name → why it was not documented
        self.exports = {}  # public module name → [(public name, object)]
        self.entries = {}  # canonical public name → Entry
        self.aliases = {}  # every public name → canonical public name
        self.targets = {}  # documented name (module, object, method) → "page.html#anchor"
        self._discover()

    def _discover(self):
        root = importlib.import_module(self.package)
        names = [self.package] + [info.name for info in pkgutil.walk_packages(
            root.__path__, self.package + ".", onerror=lambda name: None)]
        for name in names:
            if any(part.startswith("_") for part in name.split(".")) or any(
                    name == private or name.startswith(private + ".")
                    for private in PRIVATE_MODULES):
                continue
            try:
                module = importlib.import_module(name)
            except Exception as error:  # an optional dependency missing, or a broken module
                self.skipped[name] = f"{type(error).__name__}: {error}"
                continue
            parent = sys.modules.get(name.rpartition(".")[0])
            if (name == self.package or hasattr(module, "__all__")
                    or name.rpartition(".")[2] in getattr(parent, "__all__", ())):
                self.modules[name] = module
        for name in sorted(self.modules, key=lambda n: (n.count("."), n)):
            module = self.modules[name]
            self.targets[name] = f"{name}.html"
            self.exports[name] = []
            for short, obj in public_names(module):
                full = f"{name}.{short}"
                self.exports[name].append((full, obj))
                if inspect.ismodule(obj):
                    self.aliases[full] = obj.__name__
                    continue
                canonical = next((e.name for e in self.entries.values()
                                  if e.obj is obj and e.kind != "constant"), None)
                if canonical is None:
                    self.entries[full] = Entry(full, obj, name)
                    self.targets[full] = f"{name}.html#{full}"
                    for method, _ in methods(obj) if inspect.isclass(obj) else ():
                        self.targets[f"{full}.{method}"] = f"{name}.html#{full}.{method}"
                    canonical = full
                self.aliases[full] = canonical

    def resolve(self, name):
        """The "page#anchor" a dotted name (`km.X` or `keras_meta.X`) links to, or None."""
        if name == ALIAS or name.startswith(ALIAS + "."):
            name = self.package + name[len(ALIAS):]
        for cut in range(name.count(".") + 1):
            head, *rest = name.rsplit(".", cut) if cut else (name,)
            if head in self.aliases and self.aliases[head] != head:
                candidate = ".".join([self.aliases[head], *rest])
                return self.resolve(candidate) if candidate != name else None
            if head in self.targets:
                return self.targets.get(".".join([head, *rest]))
        return None


def public_names(module):
    """`[(name, object)]` a public module exports, in source order."""
    if hasattr(module, "__all__"):
        return [(name, getattr(module, name)) for name in module.__all__]
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        defined_here = getattr(obj, "__module__", None) == module.__name__
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not defined_here:
            continue
        if not (inspect.isclass(obj) or callable(obj)) and not name.isupper():
            continue  # module-level variables (flags, loggers): constants are UPPER_CASE
        names.append((name, obj))
    return names


def methods(cls):
    """`[(name, attribute)]`: public methods and properties keras_meta defines on `cls`
    or its keras_meta bases (overrides of Keras methods included)."""
    found = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith(PACKAGE):
            continue
        for name, attribute in vars(klass).items():
            if not name.startswith("_") and isinstance(
                    attribute, (property, staticmethod, classmethod)) or (
                    not name.startswith("_") and inspect.isfunction(attribute)):
                found[name] = attribute
    return sorted(found.items())


def signature(obj):
    """The call signature shown for a function, a class (its constructor) or a method."""
    if isinstance(obj, property):
        return None
    target = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
    try:
        if inspect.isclass(target):
            sig = inspect.signature(target.__init__)
            params = list(sig.parameters.values())[1:]
            return sig.replace(parameters=params)
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def documented_parameters(sig):
    """The parameter names a docstring's `Args:` must describe."""
    if sig is None:
        return []
    return [p.name for p in sig.parameters.values() if p.name not in ("self", "cls")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def split_sections(doc):
    """`(summary, [(section title or None, lines)])` of a cleaned docstring."""
    lines = doc.splitlines()
    summary = []
    while lines and lines[0].strip():
        summary.append(lines.pop(0).strip())
    sections, title, body, in_fence = [], None, [], False
    for line in lines:
        if FENCE.match(line.strip()):
            in_fence = not in_fence
        match = None if in_fence else SECTION.match(line)
        if (not match and title and not title.startswith("Example") and not in_fence
                and line[:1].strip()):
            sections.append((title, body))  # unindented text ends a section's entries
            title, body = None, []
        if match:
            sections.append((title, body))
            title, body = match.group(1), []
        else:
            body.append(line)
    sections.append((title, body))
    return " ".join(summary), [(t, b) for t, b in sections if t or any(l.strip() for l in b)]


def list_entries(body):
    """`[(names, description lines)]` of an Args/Raises/Attributes section body."""
    content = [line for line in body if line.strip()]
    if not content:
        return []
    indent = len(content[0]) - len(content[0].lstrip())
    entries = []
    for line in body:
        stripped = line.strip()
        if not stripped:
            continue
        depth = len(line) - len(line.lstrip())
        head, colon, rest = stripped.partition(":")
        if depth <= indent and colon and re.fullmatch(r"[\w*, ]+(\s*\(.*\))?", head):
            names = [n.strip().lstrip("*") for n in re.sub(r"\(.*\)", "", head).split(",")]
            entries.append((names, [rest.strip()]))
        elif entries:
            entries[-1][1].append(stripped)
        else:
            entries.append(([], [stripped]))
    return entries


# ---------------------------------------------------------------------------- checks

def source_location(obj):
    """`path:line` of an object's definition, relative to the repository."""
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "__func__", target)
    try:
        path = pathlib.Path(inspect.getsourcefile(target)).resolve()
        line = inspect.getsourcelines(target)[1]
    except (TypeError, OSError):
        return "<unknown>"
    line = line or 1  # a module
    try:
        path = path.relative_to(ROOT)
    except ValueError:
        pass
    return f"{path}:{line}"


def examples(doc):
    """The ```python blocks of a docstring's Example(s) sections."""
    _, sections = split_sections(doc)
    blocks = []
    for title, body in sections:
        if title in ("Example", "Examples"):
            blocks += [code for language, code in fenced_blocks(body) if language == "python"]
    return blocks


def fenced_blocks(lines):
    """`[(language, code)]` of the fenced blocks among `lines`."""
    blocks, language, code = [], None, []
    for line in lines:
        match = FENCE.match(line.strip())
        if match and language is None:
            language, code, indent = match.group(1) or "text", [], len(line) - len(line.lstrip())
        elif match:
            blocks.append((language, "\n".join(code) + "\n"))
            language = None
        elif language is not None:
            code.append(line[indent:] if not line[:indent].strip() else line.lstrip())
    return blocks


def check_references(api, where, doc):
    problems = []
    for span in CODE_SPAN.findall(doc or ""):
        match = PACKAGE_NAME.match(span)
        if match and api.resolve(match.group(0)) is None:
            problems.append(f"{where}: `{match.group(0)}` names no documented module, "
                            "object or method")
    return problems


def check_entry(api, entry):
    """The rule violations of one public class or function."""
    where = f"{source_location(entry.obj)}: {entry.name}"
    doc = entry.obj.__doc__ and inspect.cleandoc(entry.obj.__doc__)
    if not doc:
        return [f"{where}: no docstring"]
    problems = check_references(api, where, doc)
    _, sections = split_sections(doc)
    argument_sections = ("Args", "Arguments") + (
        ("Attributes",) if dataclasses.is_dataclass(entry.obj) else ())  # fields are both
    documented = [name for title, body in sections if title in argument_sections
                  for names, _ in list_entries(body) for name in names]
    sig = signature(entry.obj)
    expected = documented_parameters(sig) if defined_here(entry.obj) else []
    allowed = accepted_arguments(entry.obj, sig)
    problems += [f"{where}: Args names `{name}`, which is not an argument of "
                 f"{entry.short}{sig}" for name in documented if name not in allowed]
    problems += [f"{where}: argument `{name}` is not described in Args" for name in expected
                 if name not in documented]
    if not examples(doc):
        problems.append(f"{where}: no `Example:` section with a ```python block")
    if inspect.isclass(entry.obj):
        for name, method in methods(entry.obj):
            if method.__doc__ and vars(entry.obj).get(name) is method:  # once, where defined
                problems += check_method(api, entry, name, method)
    return problems


def defined_here(obj):
    """False for a class whose constructor another library defines (a TFDS builder's):
    that library documents its arguments."""
    return not inspect.isclass(obj) or any(
        "__init__" in vars(base) for base in obj.__mro__ if base.__module__.startswith(PACKAGE))


def accepted_arguments(obj, sig):
    """The names an `Args:` section may describe: the signature's, and for a class whose
    constructor takes `**kwargs`, those of its keras_meta bases' constructors it forwards to."""
    names = set(sig.parameters) if sig else set()
    has_kwargs = sig and any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    if inspect.isclass(obj) and has_kwargs:
        for base in obj.__mro__[1:]:
            if base.__module__.startswith(PACKAGE) and "__init__" in vars(base):
                names |= set(signature(base).parameters)
    return names


def check_method(api, entry, name, method):
    where = f"{source_location(method)}: {entry.name}.{name}"
    doc = inspect.cleandoc(method.__doc__)
    problems = check_references(api, where, doc)
    sig = signature(method)
    params = set(sig.parameters) if sig else set()
    for title, body in split_sections(doc)[1]:
        if title in ("Args", "Arguments"):
            problems += [f"{where}: Args names `{arg}`, which is not an argument of {name}{sig}"
                         for names, _ in list_entries(body) for arg in names if arg not in params]
    return problems


def check(api):
    """Every rule violation of the public API, one line each."""
    problems = []
    for name, module in api.modules.items():
        problems += check_references(api, f"{source_location(module)}: {name}", module.__doc__)
    for entry in api.entries.values():
        if entry.kind != "constant":
            problems += check_entry(api, entry)
    return problems


def run_examples(api):
    """`(problems, {name: seconds})`: runs every example of the public API."""
    problems, seconds = [], {}
    previous = os.getcwd()
    for entry in api.entries.values():
        if entry.kind == "constant" or not entry.obj.__doc__:
            continue
        for code in examples(inspect.cleandoc(entry.obj.__doc__)):
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as directory:
                os.chdir(directory)
                try:
                    exec(compile(EXAMPLE_PRELUDE + code, f"<example of {entry.name}>", "exec"), {})
                except Exception as error:
                    problems.append(f"{source_location(entry.obj)}: {entry.name}: example raised "
                                    f"{type(error).__name__}: {error}")
                finally:
                    os.chdir(previous)
            seconds[entry.name] = seconds.get(entry.name, 0.0) + time.perf_counter() - start
    return problems, seconds


# ---------------------------------------------------------------------------- rendering

def inline(api, text):
    """HTML of one run of prose: escaped, code spans as <code>, keras_meta names linked."""
    out, last = [], 0
    for match in CODE_SPAN.finditer(text):
        out.append(html.escape(text[last:match.start()]))
        span = match.group(1)
        code = f"<code>{html.escape(span)}</code>"
        name = PACKAGE_NAME.match(span)
        target = name and api.resolve(name.group(0))
        out.append(f'<a href="{target}">{code}</a>' if target else code)
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def prose(api, lines):
    """HTML of free text: paragraphs, "- " lists and fenced code blocks."""
    out, paragraph, items, fence, code = [], [], [], None, []

    def flush():
        if paragraph:
            out.append(f"<p>{inline(api, ' '.join(paragraph))}</p>")
            paragraph.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{inline(api, i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in lines:
        stripped = line.strip()
        match = FENCE.match(stripped)
        if match and fence is None:
            flush()
            fence, code, indent = match.group(1) or "text", [], len(line) - len(line.lstrip())
        elif match:
            out.append(f'<pre><code class="language-{fence}">'
                       f'{html.escape(chr(10).join(code))}</code></pre>')
            fence = None
        elif fence is not None:
            code.append(line[indent:] if not line[:indent].strip() else stripped)
        elif not stripped:
            flush()
        elif stripped.startswith("- "):
            if paragraph:
                flush()
            items.append(stripped[2:])
        elif items and line.startswith("  "):
            items[-1] += " " + stripped
        else:
            paragraph.append(stripped)
    flush()
    return "\n".join(out)


def docstring_html(api, doc):
    if not doc:
        return ""
    summary, sections = split_sections(inspect.cleandoc(doc))
    out = [f'<p class="summary">{inline(api, summary)}</p>'] if summary else []
    for title, body in sections:
        if title:
            out.append(f"<h4>{html.escape(title)}</h4>")
        if title in LIST_SECTIONS:
            out.append('<ul class="args">' + "".join(
                f"<li><strong>{html.escape(', '.join(names))}</strong>: "
                f"{inline(api, ' '.join(text))}</li>" if names else
                f"<li>{inline(api, ' '.join(text))}</li>"
                for names, text in list_entries(body)) + "</ul>")
        else:
            out.append(prose(api, body))
    return "\n".join(out)


def entry_html(api, entry):
    obj, anchor = entry.obj, html.escape(entry.name)
    if entry.kind == "constant":
        value = repr(obj)
        value = value if len(value) <= 100 else value[:97] + "..."
        return (f'<section class="entry" id="{anchor}"><h3><code>{anchor}</code></h3>'
                f"<pre><code>{html.escape(entry.short)} = {html.escape(value)}</code></pre>"
                "</section>")
    sig = signature(obj)
    parts = [f'<section class="entry" id="{anchor}">',
             f'<h3><span class="kind">{entry.kind}</span> <code>{anchor}</code></h3>',
             f'<pre class="signature"><code>{html.escape(entry.name)}'
             f'{html.escape(str(sig) if sig else "(...)")}</code></pre>']
    if inspect.isclass(obj):
        bases = ", ".join(f"{b.__module__}.{b.__qualname__}" for b in obj.__bases__)
        parts.append(f'<p class="bases">Inherits from <code>{html.escape(bases)}</code>.</p>')
    parts.append(docstring_html(api, obj.__doc__))
    for name, method in methods(obj) if inspect.isclass(obj) else ():
        method_anchor = html.escape(f"{entry.name}.{name}")
        method_sig = signature(method)
        kind = "property" if isinstance(method, property) else "method"
        shown = f"{name}{method_sig}" if method_sig else name
        parts.append(f'<div class="method" id="{method_anchor}"><h4><span class="kind">{kind}'
                     f'</span> <code>{html.escape(shown)}</code></h4>')
        parts.append(docstring_html(api, method.__doc__) or f"<p>{override_note(obj, name)}</p>")
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def override_note(cls, name):
    """Where the Keras method a keras_meta class overrides without a docstring comes from."""
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith(PACKAGE) and name in vars(base):
            return f"Overrides <code>{html.escape(base.__qualname__)}.{html.escape(name)}</code>."
    return "Undocumented."


def page(title, body, nav):
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title>"
            f'<link rel="stylesheet" href="style.css"></head>\n<body>\n<nav>{nav}</nav>\n'
            f"<main>\n{body}\n</main>\n</body></html>\n")


def navigation(api):
    links = "".join(f'<li><a href="{name}.html">{html.escape(name)}</a></li>'
                    for name in api.modules)
    return f'<p><a href="index.html">keras_meta API</a></p><ul>{links}</ul>'


def module_html(api, name):
    module = api.modules[name]
    parts = [f"<h1><code>{html.escape(name)}</code></h1>", docstring_html(api, module.__doc__)]
    listed = [(full, api.aliases.get(full, full)) for full, _ in api.exports[name]]
    parts.append("<h2>Contents</h2><ul class=\"contents\">" + "".join(
        f'<li><a href="{api.resolve(target)}"><code>{html.escape(full)}</code></a>'
        + (f" (documented as <code>{html.escape(target)}</code>)" if target != full else "")
        + "</li>" for full, target in listed) + "</ul>")
    parts += [entry_html(api, api.entries[full]) for full, target in listed
              if target == full and full in api.entries]
    return page(name, "\n".join(parts), navigation(api))


def index_html(api):
    names = sorted(set(api.aliases) | set(api.modules), key=str.lower)
    rows = "".join(f'<li><a href="{api.resolve(n)}"><code>{html.escape(n)}</code></a></li>'
                   for n in names)
    body = ("<h1>keras_meta API reference</h1>"
            "<p>Generated from the docstrings by <code>python docs/build.py</code>. Examples "
            "assume <code>import keras, keras_meta as km, numpy as np, tensorflow as "
            "tf</code>.</p><h2>Modules</h2><ul>"
            + "".join(f'<li><a href="{m}.html"><code>{html.escape(m)}</code></a></li>'
                      for m in api.modules)
            + f'</ul><h2>All names</h2><ul class="index">{rows}</ul>')
    return page("keras_meta API reference", body, navigation(api))


def write_site(api, output):
    output.mkdir(parents=True, exist_ok=True)
    (output / "style.css").write_text(
        (pathlib.Path(__file__).parent / "style.css").read_text(encoding="utf-8"), "utf-8")
    (output / "index.html").write_text(index_html(api), "utf-8")
    for name in api.modules:
        (output / f"{name}.html").write_text(module_html(api, name), "utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(pathlib.Path(__file__).parent / "api"),
                        help="directory to write the pages to (default: docs/api)")
    parser.add_argument("--run_examples", action="store_true",
                        help="also run every docstring example; one that raises is a problem")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    api = Api()
    for name, reason in api.skipped.items():
        print(f"skipped {name}: cannot import it ({reason})", file=sys.stderr)
    problems = check(api)
    if args.run_examples:
        failures, seconds = run_examples(api)
        problems += failures
        slowest = sorted(seconds.items(), key=lambda item: -item[1])[:3]
        print(f"ran {len(seconds)} examples in {sum(seconds.values()):.1f}s; slowest: "
              + ", ".join(f"{name} {s:.1f}s" for name, s in slowest))
    write_site(api, pathlib.Path(args.output))
    documented = sum(entry.kind != "constant" for entry in api.entries.values())
    print(f"documented {documented} classes and functions and "
          f"{len(api.entries) - documented} constants in {len(api.modules)} modules into "
          f"{args.output}/index.html ({time.perf_counter() - start:.1f}s)")
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} docstring problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # document the checkout this script belongs to
    sys.exit(main())
