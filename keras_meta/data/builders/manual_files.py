"""Reading what users put in a manual directory: checksums, safe unpickling,
and errors that say what is missing.

Pickles are never unpickled with `pickle.load`: `safe_load_pickle` allows
only the globals that rebuild numpy arrays, so a tampered file cannot run
code. Pickle files (a fixed format) are verified against the SHA-256 digests
known for them: those in the builder's table and those in a `SHA256SUMS`
file beside them (the `sha256sum` output format, `<hex digest>  <file name>`
per line); a file with a known digest that does not match is refused.
"""

import hashlib
import io
import pathlib
import pickle

from absl import logging

SHA256SUMS = "SHA256SUMS"
_LISTED = 12  # names listed in an error before "... (N in all)"

# Globals a pickled numpy array (protocols 0-5, numpy 1 and 2) refers to.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict"),
    ("builtins", "bytearray"), ("__builtin__", "bytearray"),
}


class _NumpyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _NUMPY_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays, dicts, lists and "
                "strings are allowed")
        return super().find_class(module, name)


def safe_load_pickle(path):
    """Unpickles `path` allowing numpy arrays, dicts, lists, numbers and
    strings only (Python 2 pickles decode their byte strings as latin-1).

    Raises:
      ValueError: naming the file, if it is not such a pickle.
    """
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as file:
            return _NumpyUnpickler(io.BufferedReader(file), encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{path} is not a pickle of numpy arrays ({error}).") from error


def sha256(path):
    """The hex SHA-256 digest of the file at `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def listed_sha256(directory):
    """`{file name: digest}` of `directory`'s `SHA256SUMS` file, or {}."""
    path = pathlib.Path(directory) / SHA256SUMS
    if not path.is_file():
        return {}
    digests = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{path}:{number}: expected '<sha256 hex digest>  <file name>'; "
                             f"found {line!r}.")
        digests[parts[1].lstrip("*")] = parts[0].lower()
    return digests


def verify_sha256(path, known):
    """Checks the file at `path` against the digests `known` (file name →
    hex digest) and its directory's `SHA256SUMS`.

    Raises:
      ValueError: naming the file and both digests, if one does not match.
    """
    path = pathlib.Path(path)
    expected = {digest for digest in (known.get(path.name),
                                      listed_sha256(path.parent).get(path.name)) if digest}
    actual = sha256(path)
    for digest in sorted(expected):
        if actual != digest:
            raise ValueError(
                f"{path} has SHA-256 {actual}, expected {digest}: the file is corrupt, "
                "truncated or not the published one; download it again.")
    if not expected:
        logging.warning("No published SHA-256 is known for %s; its digest is %s.", path, actual)
    return actual


def abridged(names):
    """`names` as a short string: the first few, then how many in all."""
    names = sorted(names)
    if len(names) <= _LISTED:
        return ", ".join(names)
    return ", ".join(names[:_LISTED]) + f", ... ({len(names)} in all)"


def directory_mismatch(dataset, directory, what, instructions):
    """The error for a manual directory that does not match: which dataset,
    where, what is missing or wrong, and what the directory must hold."""
    directory = pathlib.Path(directory)
    present = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []
    return ValueError(
        f"{dataset}: the manual directory {directory} does not match: {what}. It holds: "
        f"[{abridged(present) if present else 'nothing'}].\n{instructions}")
