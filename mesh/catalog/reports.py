"""HTML report pages of publishes: each publish's own page, the version's page, refusals.

Layout under ``<warehouse>/_catalog/reports/<domain>.<set>/`` (paths from ``Catalog``):

* ``<version>/<publish_id>.html``: the report of one landed publish, written before its
  ``versions`` row and deleted if that row does not land; never overwritten, so republishing
  a version (another range, a retry) keeps every earlier publish's report;
* ``<version>.html``: the version's stable page, a copy of its newest landed publish's
  report, written after the ``versions`` row;
* ``<version>/refused/<publish_id>.html``: the report of a publish governance refused; it
  records no version and replaces no page of a landed publish.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mesh.errors import GovernanceError
from mesh.storage.commit import filesystem_for

if TYPE_CHECKING:
    from mesh.catalog.tables import Catalog
    from mesh.definitions import AnyFeatureSet
    from mesh.governance.results import GovernanceReport


def refuse_if_failed(
    catalog: Catalog,
    fs: AnyFeatureSet,
    attempt_id: str,
    stats: dict[str, Any],
    report: GovernanceReport,
) -> None:
    """Raise the refusal's ``GovernanceError`` (param ``report_path``) after saving its report.

    The page goes under ``refused/``, apart from the pages of landed publishes, which it
    must never replace.
    """
    if report.ok:
        return
    from mesh.governance.report import render_html

    name, version = fs.qualified_name, fs.version
    path: str | None = catalog.refusal_report_path(name, version, attempt_id)
    note = f"Report: {path}"
    try:
        write_text(str(path), render_html(name, version, stats, report))
    except OSError as exc:  # the refusal is what the caller must see, not the page
        note, path = f"(its HTML report could not be written: {exc})", None
    try:
        report.raise_if_failed("publish")
    except GovernanceError as exc:
        first, newline, rest = exc.message.partition("\n")
        params = {k: v for k, v in exc.params.items() if k != "report"}
        raise GovernanceError(
            f"{first} {note}{newline}{rest}",
            report=exc.report,
            **params,
            report_path=path,
        ) from None


def copy_to_version_page(
    catalog: Catalog, fs: AnyFeatureSet, publish_id: str, report_path: str
) -> str | None:
    """Make the landed publish's report the version's stable page (``<version>.html``).

    Returns a warning when the page cannot be written: the version row has landed, so the
    publish succeeded (undoing it, or failing it so that a scheduler runs it again, for a
    page copy would be worse); the publish's own report is in place.
    """
    page = catalog.report_path(fs.qualified_name, fs.version)
    try:
        filesystem, inner = filesystem_for(report_path)
        with filesystem.open_input_stream(inner) as handle:
            text = handle.read().decode("utf-8")
        write_text(page, text)
    except OSError as exc:
        return (
            f"{fs.qualified_name} {fs.version} was published (publish {publish_id}, report "
            f"{report_path}), but the version page {page} could not be written ({exc}); copy "
            "the report there"
        )
    return None


def write_text(path: str, text: str) -> None:
    filesystem, inner = filesystem_for(path)
    parent = inner.rsplit("/", 1)[0]
    filesystem.create_dir(parent, recursive=True)
    with filesystem.open_output_stream(inner) as handle:
        handle.write(text.encode("utf-8"))


def delete_file(path: str) -> None:
    from pyarrow import fs as pafs

    filesystem, inner = filesystem_for(path)
    if filesystem.get_file_info(inner).type != pafs.FileType.NotFound:
        filesystem.delete_file(inner)
