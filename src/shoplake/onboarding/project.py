"""`shoplake init`: a new project folder, and with `--from` overlay contracts that fit a foreign export.

Nothing is overwritten: when any file it would write exists, init stops before writing anything.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from shoplake.contracts import load_contracts
from shoplake.errors import ConfigError, ContractError
from shoplake.layers import gold
from shoplake.onboarding.inputs import model_inputs
from shoplake.onboarding.overlay import FeedPlan, plan_export, render
from shoplake.onboarding.profile import FileProfile, Unreadable, profile_file

# Every setting of config.Settings with its default, commented; tests check that none is left out.
SETTINGS_TEMPLATE = """\
# shoplake settings. Paths are relative to this file; SHOPLAKE_<NAME> environment variables override them.
landing: landing        # where files land: a folder or s3://bucket/prefix
lake: lake              # where the Delta tables (and the state store of a local lake) live
# archive: null         # where processed/ and failed/ files go (default: next to landing, named archive)
# work_dir: null        # local scratch for a remote lake (default ./.shoplake)
engine: duckdb          # duckdb or spark
contracts: [contracts]  # folders of YAML contracts that override or extend the built-in pack
# models: []            # folders of extra or replacement gold models (SQL)
# gold_models: null     # build only these gold models and those they read (default: all)
# state_url: null       # SQLAlchemy URL of the operational store (default: SQLite in the lake), or
#                       # postgresql://user@host:5432/db (password from PGPASSWORD or ~/.pgpass)
# memory_limit: 1GB     # DuckDB engine
# threads: null         # DuckDB engine (default: all cores)
# spark_master: null    # Spark engine: local[N], spark://host:7077, yarn
# spark_conf: {}        # Spark engine: extra session settings
# batching:             # when `shoplake watch` starts a batch (a trigger file always starts one)
#   max_files: 10
#   max_wait_minutes: 20
#   required: [orders, order_items, products]
# settle_seconds: 2     # watch: a file is read once its size and mtime are unchanged this long
# scan_seconds: 30      # watch: full listing of the landing store, the safety net under events
# lease_seconds: 60     # a running batch's lease; renewed while its process lives
# timezone: UTC         # the shop's IANA time zone: KPI days, and the day of a landed file without a date in its name
# reporting_currency: USD  # marts sum amounts converted to this currency (the fx_rates feed)
# kpis:                 # thresholds of the KPI definitions (README, KPI definitions)
#   new_days: 30        # lifecycle: first sale within 30 days -> new
#   active_days: 90     # last sale within 90 days -> active
#   at_risk_days: 180   # last sale within 180 days -> at_risk; older -> churned
#   vip_share: 0.05     # VIP: the top 5 % of customers by LTV
#   window_shopper_sessions: 3  # window shopper: this many sessions with page views ...
#   window_shopper_days: 90     # ... in this many days, and no purchase ever
#   session_gap_minutes: 30     # a feed without session ids: this much inactivity starts a session
#   stock_baseline_days: 7      # trailing window of the stock-level median
#   stock_drop_share: 0.5       # a drop: stock below (1 - 0.5) x the trailing median
#   stock_spike_factor: 2.0     # a spike: stock above 2 x the trailing median
# maintenance:          # `shoplake maintain`
#   vacuum_retention_hours: 168  # old table versions stay readable (show --as-of) this long
#   archive_retention_days: 90   # archived landing files kept this long; null: forever
#   compact_target_size: null    # bytes per compacted file (128MB, 1GiB); null: the engine's default
# checks: [checks]      # folders of extra checks (SQL files, YAML lists) that audit every batch
# alerts:               # channels for alerts; secrets only from the named environment variables
#   min_level: warning          # info | warning | critical
#   resend_after_minutes: 60    # the same alert is not sent again within this window
#   webhook: {url_env: SLACK_WEBHOOK_URL}
#   email: {host: smtp.example.com, from: shoplake@shop.example, to: [ops@shop.example],
#           starttls: true, username: shoplake, password_env: SHOPLAKE_SMTP_PASSWORD}
# lineage:              # OpenLineage run events of every batch (off unless file or url is set)
#   file: lineage/events.jsonl
#   url: null                   # an OpenLineage server; api_key_env names the key's variable
# publish:              # copy gold to PostgreSQL after every batch and with `shoplake publish` (off unless set)
#   url: postgresql://shoplake@db.example:5432/shop  # no password here: PGPASSWORD or ~/.pgpass
#   schema: warehouse           # gold's star schema and marts
#   seed_schemas: false         # true: silver as production, bronze as staging
#   silver_schema: null         # or name the silver and bronze schemas yourself
#   bronze_schema: null
#   state_schema: shoplake      # holds publish_state: the Delta version each published table has
# monitor_every: 300    # watch: run the monitor every this many seconds; 0: never
# monitor:              # `shoplake monitor` (README, monitoring)
#   check_days: 7               # the newest business dates judged
#   stuck_minutes: 60           # a batch running longer than this: warning
#   arrival_grace_hours: 3      # a feed's next file is overdue this long after its usual arrival
#   volume_weeks: 4             # volume baseline: the same weekday over this many weeks
#   volume_min_points: 3        # fewer same-weekday days: every day of those weeks
#   volume_z: 3.5               # robust z-score (median, MAD) of an anomaly
#   volume_warn_change: 0.2     # ... and this share off the median: warning
#   volume_critical_low: 0.5    # ... at most this share of the median: critical
#   volume_critical_high: 2.0   # ... at least this multiple of the median: critical
#   quarantine_rise: 0.05       # quarantine rate up this much across the judged dates: warning
"""

README_TEMPLATE = """\
# {name}

A shoplake project.

- `shoplake.yml`: settings (every one is listed there with its default).
- `contracts/`: YAML contracts that override or extend the built-in feeds.
- `landing/`: drop the shop's files here.

Next steps:

    shoplake run --dry-run   # how each landed file would load; writes nothing
    shoplake run             # load them: lake/ gets the Delta tables, archive/ the files
"""


@dataclass
class InitReport:
    folder: Path
    written: list[Path] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # what init --from matched, guessed or could not read
    plans: list[FeedPlan] = field(default_factory=list)


def init_project(folder: Path, *, export: Path | None = None) -> InitReport:
    """Create the project in `folder` (and with `export`, its overlay contracts); ConfigError if a file
    it would write exists already, or the export holds no readable CSV."""
    report = InitReport(folder)
    contracts: dict[str, str] = {}
    settings = SETTINGS_TEMPLATE
    if export is not None:
        plans, lines, profiles = _plan(export)
        report.plans, report.lines = plans, lines
        contracts = _checked(plans)
        settings += _export_notes(export, profiles, lines)
    readme = README_TEMPLATE.format(name=folder.resolve().name)
    files = {folder / "shoplake.yml": settings, folder / "README.md": readme,
             **{folder / "contracts" / f"{feed}.yml": text for feed, text in contracts.items()}}
    existing = [path for path in files if path.exists()]
    if existing:
        raise ConfigError(f"{existing[0]} exists already ({len(existing)} file(s) init would write exist); "
                          "init never overwrites", hint="run it in an empty folder, or move those files away first")
    for sub in ("contracts", "landing"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        report.written.append(path)
    return report


def _plan(export: Path) -> tuple[list[FeedPlan], list[str], list[FileProfile]]:
    if not export.is_dir():
        raise ConfigError(f"export folder {export} does not exist", hint="pass the folder that holds the CSV files")
    lines: list[str] = []
    profiles = []
    for path in sorted(p for p in export.rglob("*") if p.is_file()):
        relative = path.relative_to(export).as_posix()
        if not relative.lower().endswith(".csv"):
            lines.append(f"{relative}: not a .csv file, left out")
            continue
        try:
            profiles.append(profile_file(path, relative))
        except Unreadable as problem:
            lines.append(f"{problem}; left out")
    if not profiles:
        raise ConfigError(f"export folder {export} holds no readable CSV file", hint="; ".join(lines) or None)
    inputs = model_inputs(gold.load_models([]))
    plans, matched = plan_export(profiles, load_contracts(), inputs)
    return plans, [*matched, *lines], profiles


def _checked(plans: list[FeedPlan]) -> dict[str, str]:
    """The rendered contracts, loaded as a project would load them; a built-in rule that no longer
    type-checks against the export's types is left out with a comment instead of breaking the project."""
    for _ in range(50):  # at most one retry per dropped rule
        texts = {plan.feed: render(plan) for plan in plans}
        with tempfile.TemporaryDirectory() as scratch:
            for feed, text in texts.items():
                (Path(scratch) / f"{feed}.yml").write_text(text, encoding="utf-8")
            try:
                load_contracts([Path(scratch)])
                return texts
            except ContractError as error:
                if not _drop_rule(plans, error):
                    raise ConfigError(f"init --from wrote a contract that does not load ({error.problem}); "
                                      "this is a bug in init", hint="report it with the export's header") from None
    raise ConfigError("init --from could not write contracts that load; this is a bug in init")


def _drop_rule(plans: list[FeedPlan], error: ContractError) -> bool:
    feed = Path(error.source).stem
    for plan in plans:
        if plan.feed != feed:
            continue
        for rule in plan.rules:
            if f"rule {rule['name']}:" in error.problem:
                plan.rules.remove(rule)
                plan.todo.append(f"rule {rule['name']} of the built-in feed left out: it does not type-check "
                                 "against the export's column types")
                return True
    return False


def _export_notes(export: Path, profiles: list[FileProfile], lines: list[str]) -> str:
    notes = [f"\n# Contracts in contracts/ were written by `shoplake init --from {export}` from a sample of each file:"]
    notes += [f"#   {line}" for line in lines]
    notes.append(f"# See how the export would load (nothing is written): shoplake run --dry-run --landing {export}")
    notes.append("# A run moves the files it loads to the archive: copy the export into landing/ to keep it intact.")
    return "\n".join(notes) + "\n"
