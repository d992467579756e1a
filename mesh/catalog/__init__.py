"""The catalog: Delta tables in the warehouse, publish, access control, audit, discovery."""

from mesh.catalog.access import Identity, authorize_read, current_identity
from mesh.catalog.lineage import lineage, record_training_set
from mesh.catalog.publish import PublishResult, publish_definition, publish_feature_set
from mesh.catalog.search import search, show, versions

__all__ = [
    "Identity",
    "PublishResult",
    "authorize_read",
    "current_identity",
    "lineage",
    "publish_definition",
    "publish_feature_set",
    "record_training_set",
    "search",
    "show",
    "versions",
]
