"""Warehouse locations as pyarrow opens them: Hadoop and Databricks schemes, clear errors."""

from __future__ import annotations

import pytest
from pyarrow import fs as pafs

from mesh.errors import StorageError
from mesh.storage.commit import arrow_location, filesystem_for


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3a://bucket/warehouse/t", "s3://bucket/warehouse/t"),
        ("S3N://bucket/t", "s3://bucket/t"),
        ("s3://bucket/t", "s3://bucket/t"),
        ("dbfs:/mnt/warehouse/t", "/dbfs/mnt/warehouse/t"),
        ("dbfs:///mnt/t", "/dbfs/mnt/t"),
        ("file:///tmp/w/t", "/tmp/w/t"),
        ("/tmp/w/t", "/tmp/w/t"),
        ("gs://bucket/t", "gs://bucket/t"),
    ],
)
def test_locations_as_pyarrow_names_them(uri: str, expected: str) -> None:
    assert arrow_location(uri) == expected


def test_dbfs_is_the_local_mount() -> None:
    filesystem, path = filesystem_for("dbfs:/mnt/warehouse")
    assert isinstance(filesystem, pafs.LocalFileSystem)
    assert path == "/dbfs/mnt/warehouse"


def test_unknown_scheme_is_a_storage_error() -> None:
    with pytest.raises(StorageError) as err:
        filesystem_for("nosuchfs://bucket/warehouse")
    assert err.value.params["path"] == "nosuchfs://bucket/warehouse"
