"""`shoplake dashboard`: start the read-only Streamlit app over the project's lake, on 127.0.0.1 unless told."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import typer

from shoplake.errors import ConfigError

DEFAULT_HOST = "127.0.0.1"  # the lake's numbers stay on this machine unless --host says otherwise
DEFAULT_PORT = 8501


def streamlit_command(lake: str, config: Path | None, host: str, port: int) -> list[str]:
    """The `streamlit run` command line for the app over `lake` (what the CLI runs, and the tests too)."""
    from shoplake.dashboard import APP

    app_args = ["--lake", lake, *(["--config", str(config)] if config else [])]
    # `streamlit run`, through a module that imports the pages first (see shoplake.dashboard.serve).
    return [sys.executable, "-m", "shoplake.dashboard.serve", "run", str(APP), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--global.developmentMode", "false", "--client.toolbarMode", "viewer",
            "--", *app_args]


def register(app: typer.Typer) -> None:
    from shoplake import api
    from shoplake.cli import ConfigOpt, LakeOpt, handle_errors
    from shoplake.console import say

    @app.command()
    @handle_errors
    def dashboard(
        lake: str = LakeOpt,
        config: Path = ConfigOpt,
        host: str = typer.Option(DEFAULT_HOST, "--host", help="Address to listen on (0.0.0.0: every interface)."),
        port: int = typer.Option(DEFAULT_PORT, "--port", help="Port to listen on."),
    ) -> None:
        """Serve the dashboards (sales, products, funnel, customer 360, pipeline health) until stopped."""
        if importlib.util.find_spec("streamlit") is None:
            raise ConfigError("the dashboard needs Streamlit, which is not installed",
                              hint="pip install 'shoplake[dashboard]'")
        settings = api.settings(config, lake=lake)
        say(f"dashboard over {settings.tables_root} at http://{host}:{port} (Ctrl+C stops it)")
        try:
            completed = subprocess.run(streamlit_command(settings.tables_root, config, host, port), check=False)
        except KeyboardInterrupt:
            return
        if completed.returncode not in (0, -2):
            raise typer.Exit(1)
