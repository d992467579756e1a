"""Table paths as the catalog and training-set manifests record them: relocatable.

A table under the warehouse root is recorded by its place in the warehouse
(``features/<domain>/<set>/v<major>``, ``training/<domain>/<name>``), so a warehouse copied or
moved elsewhere (another folder, mount or volume) reads its own tables: the place is read under
the warehouse the catalog is opened at. A table outside the warehouse, or on another store or
scheme than the warehouse (``/dbfs/x`` against ``dbfs:/wh``, ``s3a://`` against ``s3://``), is
recorded absolute (local paths resolved, ``file:`` unwrapped) or as the URI.

Records an earlier engine wrote are read as before: an absolute path as recorded, a relative one
ending in the table's place as that place under the warehouse, another relative one from the
working directory. An absolute path of a warehouse that has since moved is not silently read
elsewhere: see :func:`recorded_path`.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence

from mesh.errors import WarehouseMovedError
from mesh.storage import is_uri, normalize_path, parts_below


def place_in(warehouse: str, path: str) -> str | None:
    """``path``'s place under ``warehouse`` (``features/d/s/v1``); ``None`` when it lies outside,
    is the warehouse itself, or is on another scheme or authority.

    Local paths (``file:`` URIs among them) compare by their text, then resolved (symbolic
    links); URIs by scheme, authority and normalised path, never decoded.
    """
    root, target = normalize_path(warehouse), normalize_path(path)
    if is_uri(root) != is_uri(target):
        return None
    if is_uri(root):
        return _uri_place(root, target)
    if target.startswith(root.rstrip("/") + "/"):
        return target[len(root.rstrip("/")) + 1 :]
    parts = parts_below(root, target)
    return "/".join(parts) if parts else None


def _uri_place(root: str, target: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        base, inner = urlsplit(root), urlsplit(target)
    except ValueError:  # a malformed authority: no place can be told
        return None
    if (base.scheme.lower(), base.netloc.lower()) != (inner.scheme.lower(), inner.netloc.lower()):
        return None
    prefix = posixpath.normpath("/" + base.path.lstrip("/")).rstrip("/") + "/"
    inside = posixpath.normpath("/" + inner.path.lstrip("/"))
    return inside[len(prefix) :] if inside.startswith(prefix) else None


def stored_path(warehouse: str, path: str) -> str:
    """A table path as a record keeps it: its place in ``warehouse`` when it lies there (see
    :func:`place_in`), else absolute (a relative ``path`` is taken from the working
    directory) or the URI unchanged."""
    return place_in(warehouse, path) or normalize_path(path)


def under(warehouse: str, place: str) -> str:
    """``place`` (relative) under ``warehouse``, absolute or a URI."""
    return f"{normalize_path(warehouse).rstrip('/')}/{place.strip('/')}"


def recorded_path(
    warehouse: str, path: str, inside: str | None = None, moved_from: Sequence[str] = ()
) -> str:
    """A table path read from a record: absolute, under ``warehouse`` when the record places
    the table in the warehouse.

    ``inside`` is the table's place in the warehouse as its record implies it (a feature
    table's ``features/<domain>/<set>/v<major>``), ``None`` when the record does not say.

    * a relative ``path`` is a place in the warehouse. With ``inside``, an earlier engine's
      ``<warehouse as given>/<inside>`` (relative to that process's working directory) is
      ``inside`` under ``warehouse`` too, and another relative path is taken from the working
      directory, as it was read before;
    * an absolute path (or URI) in ``warehouse`` is returned spelled from ``warehouse``;
    * an absolute ``<old root>/<inside>`` outside ``warehouse`` was recorded by an earlier
      engine in a warehouse that has since been copied or moved. It is ``inside`` under
      ``warehouse`` when ``moved_from`` (``storage.moved_from``) names ``<old root>``;
      otherwise it is read as recorded, but a local one that no longer exists while
      ``inside`` does under ``warehouse`` is refused (``WarehouseMovedError`` naming both):
      the table there may be a copy or another table, and reading it silently could give
      another table's rows. URIs are not checked (an object store has no folders);
    * any other absolute path or URI (a table outside the warehouse) is returned as recorded.
    """
    if not (os.path.isabs(path) or is_uri(path)):
        relative = path.rstrip("/")
        if inside is None:
            return under(warehouse, relative)
        tail = inside.strip("/")
        if relative == tail or relative.endswith(f"/{tail}"):
            return under(warehouse, tail)
        return normalize_path(path)
    place = place_in(warehouse, path)
    if place is not None:
        return under(warehouse, place)
    if inside is None or not path.rstrip("/").endswith(f"/{inside.strip('/')}"):
        return path
    tail = inside.strip("/")
    old_root = path.rstrip("/")[: -len(tail) - 1] or "/"
    if parts_below(warehouse, old_root) == []:  # this warehouse, spelt another way
        return path
    if any(parts_below(root, old_root) == [] for root in moved_from):
        return under(warehouse, tail)
    here = under(warehouse, tail)
    if not is_uri(path) and not is_uri(here) and not os.path.exists(path) and os.path.exists(here):
        raise WarehouseMovedError(
            f"the record places the table at {path}, which does not exist, in the warehouse "
            f"{old_root}; this warehouse ({normalize_path(warehouse)}) has the same place at "
            f"{here}. If the warehouse was moved or copied from {old_root}, add it to "
            "storage.moved_from in conf/mesh.yaml to read its records here; otherwise restore "
            f"{path}",
            recorded=path,
            current=here,
            old_warehouse=old_root,
            warehouse=normalize_path(warehouse),
        )
    return path


__all__ = ["place_in", "recorded_path", "stored_path", "under"]
