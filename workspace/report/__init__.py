"""The static HTML report: queries, figures, transcript rendering and the site writer."""

from callqa.workspace.report.site import AudioMode, ReportError, ReportSummary, build_report

__all__ = ["AudioMode", "ReportError", "ReportSummary", "build_report"]
