"""Post-call analysis (summary, structured data, success evaluation)."""

from flireo.analysis.runner import AnalysisOutcome, analyze_call

__all__ = ["AnalysisOutcome", "analyze_call"]
