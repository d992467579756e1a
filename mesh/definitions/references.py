"""Feature references: ``domain.feature_set[@version].feature`` (``*`` for every feature)."""

from __future__ import annotations

import re

from mesh.definitions.base import StrictModel

_REF = re.compile(
    r"^(?P<domain>[a-z][a-z0-9_]*)\.(?P<fs>[a-z][a-z0-9_]*)"
    r"(?:@(?P<version>\d+(?:\.\d+){0,2}))?\.(?P<feature>[a-z][a-z0-9_]*|\*)$"
)


class FeatureRef(StrictModel):
    """A parsed reference; ``version`` is ``None`` (latest), a major (``2``) or exact."""

    domain: str
    feature_set: str
    version: str | None = None
    feature: str

    @classmethod
    def parse(cls, text: str) -> FeatureRef:
        match = _REF.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise ValueError(
                f"{text!r} is not a feature reference; use domain.feature_set.feature or "
                "domain.feature_set@1.2.0.feature (or .* for all features)"
            )
        return cls(
            domain=match["domain"],
            feature_set=match["fs"],
            version=match["version"],
            feature=match["feature"],
        )

    @property
    def set_name(self) -> str:
        return f"{self.domain}.{self.feature_set}"

    def __str__(self) -> str:
        pin = f"@{self.version}" if self.version else ""
        return f"{self.set_name}{pin}.{self.feature}"
