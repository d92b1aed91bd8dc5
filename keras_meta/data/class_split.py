"""Class splits: which classes a stream of episodes may draw from.

`classes` is one of
- None: every class of the source;
- a collection of class labels, or, with `group_by`, of groups (names or ids
  of the grouping feature, e.g. Omniglot alphabets) whose classes are used;
- a mapping from split names ("train", "validation", "test", ...) to such
  collections, with `split` naming the one to use. The splits' class sets
  must be disjoint (checked after groups are resolved to classes).
"""

import collections.abc

import numpy as np


def select_classes(table, classes, split=None, group_by=None):
    """The sorted class labels that `classes` and `split` select in `table`.

    Args:
      table: an `image_table.ImageTable` (its `groups` set iff `group_by` is).
      classes: None, a collection of labels or groups, or a mapping of them.
      split: the key of `classes` to use when it is a mapping, else None.
      group_by: name of the grouping feature, or None.

    Returns:
      `[K]` int64 labels, sorted.
    """
    if isinstance(classes, collections.abc.Mapping):
        if not classes:
            raise ValueError("`classes` must map split names to classes; received an empty mapping.")
        if split not in classes:
            raise ValueError(f"`split` must be one of {list(classes)}; received {split!r} "
                             "(`split` selects a key of `classes`).")
        resolved = {name: _resolve(table, values, group_by, f"classes[{name!r}]")
                    for name, values in classes.items()}
        _check_disjoint(resolved)
        return resolved[split]
    if split is not None:
        raise ValueError(
            f"`split`={split!r} needs `classes` to be a mapping from split names to classes; "
            f"received classes={classes!r}."
        )
    if classes is None:
        return np.unique(table.labels)
    return _resolve(table, classes, group_by, "classes")


def _resolve(table, values, group_by, argument):
    if isinstance(values, (str, bytes)) or not isinstance(values, collections.abc.Iterable):
        raise ValueError(f"`{argument}` must be a collection of classes; received {values!r}.")
    values = list(values)
    if not values:
        raise ValueError(f"`{argument}` is empty.")
    if group_by is None:
        return _labels(table, values, argument)
    ids = [_group_id(table, value, group_by, argument) for value in values]
    return np.unique(table.labels[np.isin(table.groups, ids)])


def _labels(table, values, argument):
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise ValueError(
            f"`{argument}` must hold integer class labels (pass `group_by` to select classes "
            f"by a grouping feature); received {values!r}."
        )
    present = np.unique(table.labels)
    missing = sorted(set(int(v) for v in values) - set(present.tolist()))
    if missing:
        raise ValueError(
            f"`{argument}` lists labels absent from the source: {_abridged(missing)}; available: "
            f"{len(present)} labels, {_abridged(present.tolist())}."
        )
    return np.unique(np.asarray(values, np.int64))


def _group_id(table, value, group_by, argument):
    present = np.unique(table.groups).tolist()
    names = table.group_names
    available = [names[i] for i in present] if names is not None else present
    if isinstance(value, str) and names is not None and value in names:
        group = names.index(value)
    elif isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        group = int(value)
    else:
        group = None
    if group not in present:
        raise ValueError(f"`{argument}`: unknown {group_by} {value!r}; available: {available}.")
    return group


def _check_disjoint(resolved):
    names = list(resolved)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            shared = np.intersect1d(resolved[first], resolved[second])
            if shared.size:
                raise ValueError(
                    f"`classes`: splits {first!r} and {second!r} share {shared.size} classes "
                    f"({_abridged(shared.tolist())}); a class split must be disjoint."
                )


def _abridged(values, limit=20):
    values = list(values)
    return str(values) if len(values) <= limit else f"{values[:limit]} ... ({len(values)} in all)"
