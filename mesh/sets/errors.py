"""Errors of training, inference and global feature set builds (all ``MeshError``)."""

from __future__ import annotations

from mesh.errors import MeshError


class SetBuildError(MeshError):
    """A training set, inference set or global feature set could not be built as asked."""


class UnknownReferenceError(SetBuildError):
    """A feature reference names a feature set or feature that is not defined."""


class VersionPinError(SetBuildError):
    """No commit of a feature table carries a semantic version matching the reference's pin."""


class NotPublishedError(SetBuildError):
    """A consumer read a feature set that has no published version (no governance check passed)."""


class NewInputMajorError(SetBuildError):
    """A global set's input resolves to another major than its last publish read: the rows
    belong to a new major of the global set, which ``conf/`` does not define yet."""


class InputNotBuiltError(SetBuildError):
    """The feature table a reference points at has not been computed (no Delta table)."""


class SpineError(SetBuildError):
    """The spine cannot be used: missing table, missing key or timestamp columns."""


class SpineChangedError(SpineError):
    """The spine differs from the fingerprint pinned in a manifest; a rebuild would differ."""


class InputChangedError(SetBuildError):
    """A pinned feature table no longer holds the pinned commit; a rebuild would differ."""


class ManifestError(SetBuildError):
    """A training-set manifest is missing, unreadable or not a manifest."""


class OutputPathError(SetBuildError):
    """An output would overwrite a managed area, a table the build reads, or others' data."""
