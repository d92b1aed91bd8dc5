"""The release artifacts: the wheel and sdist that `python -m build` makes from a copy of the
source tree, what they contain and declare, and the wheel installed into a fresh virtual
environment outside the repository, where `python -m keras_meta.train` (the README's main
job) trains for a few iterations on the Omniglot data packaged in it.

The fresh environment gets the wheel alone (`pip install --no-deps --no-index`); the
dependencies already installed here are made visible to it by a `.pth` file listing this
environment's site-packages, so TensorFlow is not installed twice. A path line in a `.pth`
file does not run that directory's own `.pth` files, so an editable install of the
repository cannot shadow the wheel (asserted below). `.ci/run` also installs the wheel with
its dependencies from PyPI into a separate environment.
"""

import ast
import email.parser
import hashlib
import json
import os
import pathlib
import shutil
import site
import subprocess
import sys
import tarfile
import venv
import zipfile

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

try:
    import tomllib
except ImportError:  # Python < 3.11: pytest and build depend on tomli there
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
DATA = "keras_meta/data/omniglot_minimal"
PACKAGED_DATA = ("images_background_small1.zip", "images_background_small2.zip", "LICENSE",
                 "README.md")
# Not copied into the tree the artifacts are built from: local environments and outputs.
IGNORED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                 "*.py[cod]", ".pytest_cache", "outputs", "*.keras", "scratch")


def source_version():
    """`keras_meta.__version__`, read from the source as setuptools reads it."""
    tree = ast.parse((ROOT / "keras_meta" / "__init__.py").read_text(encoding="utf-8"))
    versions = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["__version__"]]
    assert len(versions) == 1 and isinstance(versions[0], str), versions
    return versions[0]


VERSION = source_version()


def run(args, **kwargs):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                            timeout=600, **kwargs)
    assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-5000:])
    return result


def build(source, outdir, *only):
    """`python -m build` without isolation (offline): the sdist and a wheel built from it, or
    with `--wheel` a wheel built from the tree directly."""
    run([sys.executable, "-m", "build", "--no-isolation", *only, "--outdir", outdir, source])
    return sorted(outdir.iterdir())


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def wheel_files(path):
    """`{name: sha256}` of a wheel's members."""
    with zipfile.ZipFile(path) as wheel:
        return {name: sha256(wheel.read(name)) for name in wheel.namelist()}


def requirement_set(lines):
    return {str(Requirement(line)) for line in lines}


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """`(sdist, wheel built from the sdist, wheel built from the tree)`."""
    base = tmp_path_factory.mktemp("package")
    source = base / "keras_meta-src"
    shutil.copytree(ROOT, source, ignore=IGNORED, symlinks=True)
    via_sdist = build(source, base / "dist")
    direct = build(source, base / "dist-direct", "--wheel")
    names = [p.name for p in via_sdist]
    assert names == [f"keras_meta-{VERSION}-py3-none-any.whl", f"keras_meta-{VERSION}.tar.gz"]
    assert [p.name for p in direct] == names[:1]
    return via_sdist[1], via_sdist[0], direct[0]


def python_sources():
    for folder in ("keras_meta", "tests", "examples", "benchmarks"):
        yield from sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def annotations(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                             arguments.vararg, arguments.kwarg):
                if argument is not None and argument.annotation is not None:
                    yield argument.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def test_sources_run_on_the_oldest_supported_python():
    """Python 3.9 (requires-python's lower bound) parses every module, evaluates no `X | Y`
    annotation (dataclass fields and signatures are evaluated unless the module has
    `from __future__ import annotations`) and has no `zip(strict=)`."""
    assert PYPROJECT["project"]["requires-python"].startswith(">=3.9,")
    problems = []
    for path in python_sources():
        name = path.relative_to(ROOT).as_posix()
        source = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(source, filename=name, feature_version=(3, 9))
        except SyntaxError as error:
            problems.append(f"{name}: {error}")
            continue
        postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                        and any(alias.name == "annotations" for alias in node.names)
                        for node in tree.body)
        if not postponed:
            problems += [f"{name}:{a.lineno}: `|` in an evaluated annotation"
                         for a in annotations(tree) if any(
                             isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                             for n in ast.walk(a))]
        problems += [f"{name}:{node.lineno}: zip(strict=) is Python 3.10"
                     for node in ast.walk(tree) if isinstance(node, ast.Call)
                     and getattr(node.func, "id", None) == "zip"
                     and any(k.arg == "strict" for k in node.keywords)]
    assert not problems, problems


def test_version_has_one_source():
    import keras_meta

    assert PYPROJECT["project"]["dynamic"] == ["version"]
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "keras_meta.__version__"}
    assert keras_meta.__version__ == VERSION
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{VERSION}]" in changelog and "## [Unreleased]" in changelog


def test_wheel_contents_and_metadata(artifacts):
    _, wheel, _ = artifacts
    files = wheel_files(wheel)
    dist_info = f"keras_meta-{VERSION}.dist-info"
    assert {name.split("/")[0] for name in files} == {"keras_meta", dist_info}
    modules = {path.relative_to(ROOT).as_posix()
               for path in (ROOT / "keras_meta").rglob("*.py") if "__pycache__" not in path.parts}
    assert {name for name in files if name.endswith(".py")} == modules
    for name in PACKAGED_DATA:  # byte for byte the files in the repository
        assert files[f"{DATA}/{name}"] == sha256((ROOT / DATA / name).read_bytes()), name
    others = {name for name in files if not name.endswith(".py") and name.startswith("keras_")
              and not name.startswith(dist_info)}
    assert others == {f"{DATA}/{name}" for name in PACKAGED_DATA}
    assert files[f"{dist_info}/licenses/LICENSE"] == sha256((ROOT / "LICENSE").read_bytes())
    assert f"{dist_info}/licenses/{DATA}/LICENSE" in files

    with zipfile.ZipFile(wheel) as archive:
        metadata = email.parser.Parser().parsestr(
            archive.read(f"{dist_info}/METADATA").decode("utf-8"))
        assert "Root-Is-Purelib: true" in archive.read(f"{dist_info}/WHEEL").decode("utf-8")
    project = PYPROJECT["project"]
    assert metadata["Name"] == "keras_meta" and metadata["Version"] == VERSION
    assert metadata["License-Expression"] == project["license"] == "Apache-2.0"
    assert SpecifierSet(metadata["Requires-Python"]) == SpecifierSet(project["requires-python"])
    declared = requirement_set(project["dependencies"])
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in map(Requirement, requirements):
            marker = f'extra == "{extra}"'
            if requirement.marker is not None:
                marker = f"({requirement.marker}) and {marker}"
            requirement.marker = Marker(marker)
            declared.add(str(requirement))
    assert requirement_set(metadata.get_all("Requires-Dist")) == declared
    assert set(metadata.get_all("Provides-Extra")) == {"tune", "test", "rl"}
    assert "tensorflow<2.22,>=2.18" in metadata.get_all("Requires-Dist")
    minor_versions = {c.rsplit(" ", 1)[1] for c in metadata.get_all("Classifier")
                      if c.startswith("Programming Language :: Python :: 3.")}
    assert minor_versions == {"3.9", "3.10", "3.11", "3.12", "3.13"}
    assert metadata.get_payload().startswith("# keras_meta")  # the README


def test_sdist_contents_and_the_wheel_built_from_it(artifacts):
    sdist, wheel, direct_wheel = artifacts
    top = f"keras_meta-{VERSION}"
    with tarfile.open(sdist) as archive:
        members = {m.name[len(top) + 1:] for m in archive.getmembers() if m.isfile()}
        assert all(m.name == top or m.name.startswith(top + "/") for m in archive.getmembers())
        readme = archive.extractfile(f"{top}/README.md").read()
        zips = {name: sha256(archive.extractfile(f"{top}/{DATA}/{name}").read())
                for name in PACKAGED_DATA}
    assert readme == (ROOT / "README.md").read_bytes()
    assert zips == {name: sha256((ROOT / DATA / name).read_bytes()) for name in PACKAGED_DATA}
    expected = {"PKG-INFO", "pyproject.toml", "MANIFEST.in", "README.md", "CHANGELOG.md",
                "LICENSE", "CONTRIBUTING.md", "pytest.ini",
                "tests/fixtures/reproduce/expected_omniglot_rows.md",
                "benchmarks/reproduce/runner.py", "examples/omniglot_maml.py"}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").glob("*.py")}
    assert expected <= members, sorted(expected - members)
    forbidden = [m for m in members if m.startswith((".ci/", ".git", ".venv"))
                 or "__pycache__" in m or m.endswith((".pyc", ".keras"))]
    assert not forbidden, forbidden
    # The wheel built from the sdist is the wheel built from the tree, byte for byte.
    assert wheel_files(wheel) == wheel_files(direct_wheel)


def site_packages_here():
    """The site-packages directories of the environment running the tests."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dict.fromkeys(dirs) if os.path.isdir(d)]


@pytest.mark.slow  # .ci/run installs the wheel into a fresh venv and runs the main job too
def test_wheel_installs_into_a_fresh_venv_and_runs_the_main_job(artifacts, tmp_path):
    _, wheel, _ = artifacts
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False, symlinks=os.name != "nt")
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # The wheel alone, before the dependencies become visible to the new environment.
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "--no-cache-dir", "--disable-pip-version-check", wheel], env=env)
    purelib = pathlib.Path(run([python, "-c", "import sysconfig; print(sysconfig.get_path("
                                "'purelib'))"], env=env).stdout.strip())
    assert purelib.is_relative_to(env_dir)
    (purelib / "_test_dependencies.pth").write_text("\n".join(site_packages_here()) + "\n")

    work = tmp_path / "cwd"  # outside the repository: nothing there to import
    work.mkdir()
    assert not str(work).startswith(str(ROOT))
    # Where `python -m keras_meta.train` will import keras_meta from, in the same directory
    # and environment (found without running it, which would import TensorFlow).
    probe = run([python, "-c", (
        "import importlib.metadata, importlib.util, json\n"
        "print(json.dumps({'file': importlib.util.find_spec('keras_meta').origin,\n"
        "  'metadata': importlib.metadata.version('keras_meta')}))")], cwd=work, env=env)
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    installed = purelib / "keras_meta"
    assert pathlib.Path(found["file"]) == installed / "__init__.py", found
    assert found["metadata"] == VERSION
    assert f'__version__ = "{VERSION}"' in (installed / "__init__.py").read_text()
    for name in PACKAGED_DATA:  # where the builder reads them: beside builder.py
        assert (installed / "data" / "omniglot_minimal" / name).is_file(), name

    data_dir, out = tmp_path / "tensorflow_datasets", tmp_path / "run"
    # The main job's MAML on Omniglot minimal, cut to 4 meta-iterations in one epoch and
    # 10 test tasks, without the SavedModel export (the CI's clean install keeps it).
    result = run([python, "-m", "keras_meta.train", "--iterations=4", "--log_every=4",
                  "--meta_batch_size=2", "--test_tasks=10", "--val_tasks=4", "--noexport",
                  "--verbose=0", f"--data_dir={data_dir}", f"--output_dir={out}"],
                 cwd=work, env=env)
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dataset"] == "omniglot_minimal"
    assert results["config"]["algorithm"] == "maml"
    assert results["train"]["iterations"] == 4
    assert results["test"]["tasks"] == 10
    assert 0.0 <= results["test"]["test_accuracy"] <= 1.0
    assert "accuracy on 10 new tasks" in result.stdout, result.stdout[-2000:]
    assert (out / "model.keras").stat().st_size > 0
    # The dataset was prepared here, from the archives inside the installed wheel.
    assert list((data_dir / "omniglot_minimal").rglob("*.tfrecord*")), sorted(data_dir.rglob("*"))
