"""Point-in-time-correct joins of feature tables onto a spine of entity keys and times."""

from mesh.join.pit import point_in_time_join
from mesh.join.skew import SkewConfig
from mesh.join.source import FeatureSource

__all__ = ["FeatureSource", "SkewConfig", "point_in_time_join"]
