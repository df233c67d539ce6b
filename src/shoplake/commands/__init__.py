"""CLI commands kept out of cli.py, each registering itself on the app."""
