"""The periodic QA audit report (issue 19): KPIs vs the previous period and targets, diagnosis, actions."""

from callqa.workspace.audit.build import AuditSummary, build_audit_report, collect
from callqa.workspace.audit.periods import AuditError, Span
from callqa.workspace.audit.stats import concentrations, correlations

__all__ = ["AuditError", "AuditSummary", "Span", "build_audit_report", "collect", "concentrations", "correlations"]
