"""Checks of the ``dataset`` section (fixed values; distributions are not read here).

Exactly one source: ``name`` (one of DATASET_NAMES), ``path`` (a ``.npz`` file with
``x_train, y_train[, x_test, y_test]``), ``folder`` (a folder of class sub-folders) or
``upload`` (the id of an uploaded dataset). Options: ``image_size: [height, width]`` (folder or
upload only), ``subset`` (use the first N training samples), ``test`` (also evaluate on the
test split). Whether a path or folder exists and may be read is for the service to decide.
"""

from __future__ import annotations

from .checks import BoolRule, EnumRule, StrRule, check, check_keys, int_rule, node_kind
from .errors import ErrorList
from .keras_names import DATASET_NAMES
from .limits import MAX_IMAGE_SIDE
from .nodes import ListNode, MapNode, Node

SOURCES = ("name", "path", "folder", "upload")
DATASET_KEYS = frozenset({*SOURCES, "image_size", "subset", "test"})

_RULES = {
    "name": EnumRule(DATASET_NAMES),
    "path": StrRule(pattern=r"(?s).*\.npz", max_len=1000, what="a path to a .npz file"),
    "folder": StrRule(max_len=1000, what="a folder path"),
    "upload": StrRule(pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*", max_len=128, what="an upload id"),
    "subset": int_rule(1),
    "test": BoolRule(),
}
_SIDE = int_rule(1, MAX_IMAGE_SIDE)


def check_dataset(node: Node, errors: ErrorList) -> None:
    """Add the errors of a ``dataset`` section read with :func:`.nodes.plain`."""
    if not isinstance(node, MapNode):
        errors.add(node.path, f"must be a mapping, got {node_kind(node)}")
        return
    check_keys(node, DATASET_KEYS, errors)
    given = [s for s in SOURCES if s in node.items]
    if not given:
        errors.add(node.path, f"needs exactly one of {', '.join(SOURCES)}")
    elif len(given) > 1:
        errors.add(node.path, f"give only one of {', '.join(SOURCES)}; got {', '.join(given)}")
    for key, rule in _RULES.items():
        check(node.items.get(key), rule, errors, allow_dist=False)
    size = node.items.get("image_size")
    if size is not None:
        if not ({"folder", "upload"} & set(given)):
            errors.add(size.path, "is only used with folder or upload")
        if isinstance(size, ListNode) and len(size.items) == 2:
            for side in size.items:
                check(side, _SIDE, errors, allow_dist=False)
        else:
            errors.add(size.path, f"must be [height, width], got {node_kind(size)}")
