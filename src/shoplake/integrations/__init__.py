"""Shoplake inside the orchestrators shops already run: `dagster` (Definitions) and `airflow` (an operator
and a landing-folder sensor); each module imports its orchestrator, installed by the extra of its name."""
