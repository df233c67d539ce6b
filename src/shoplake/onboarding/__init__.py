"""Onboarding: `shoplake init` creates a project; `init --from` fits contracts to a foreign export."""

from shoplake.onboarding.project import InitReport, init_project

__all__ = ["InitReport", "init_project"]
