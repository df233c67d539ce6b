"""Typed settings: defaults, then shoplake.yml, then SHOPLAKE_* environment variables, then CLI options."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shoplake.engines import ENGINES
from shoplake.errors import ConfigError
from shoplake.landing.storage import child_of, parent_of

CONFIG_FILE = "shoplake.yml"
ENV_PREFIX = "SHOPLAKE_"
MIN_LEASE_SECONDS = 5.0
# What DuckDB's memory_limit accepts: an amount in 1000^i or 1024^i units, or a share of the machine's memory.
_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*(%|B|[KMGT]i?B)\s*", re.IGNORECASE)


class Batching(BaseModel):
    """When the watcher starts a batch for a business date (a trigger file always starts one)."""

    model_config = ConfigDict(extra="forbid")

    max_files: int = 10  # at least this many files waiting, with every required feed present
    max_wait_minutes: float = 20.0  # or this long after the last required feed arrived
    required: list[str] = ["orders", "order_items", "products"]


class Kpis(BaseModel):
    """The thresholds in the KPI definitions (README, KPI definitions); gold models read them from
    `shoplake.settings` (see `Settings.model_parameters`)."""

    model_config = ConfigDict(extra="forbid")

    new_days: int = Field(30, ge=1)  # lifecycle: first sale within this many days -> new
    active_days: int = Field(90, ge=1)  # last sale within this many days -> active
    at_risk_days: int = Field(180, ge=1)  # last sale within this many days -> at_risk; older -> churned
    vip_share: float = Field(0.05, gt=0, le=1)  # VIP = this top share of customers by LTV
    window_shopper_sessions: int = Field(3, ge=1)  # sessions with a page_view in the window, no purchase ever
    window_shopper_days: int = Field(90, ge=1)
    session_gap_minutes: int = Field(30, ge=1)  # a feed without session ids: a gap this long starts a session
    stock_baseline_days: int = Field(7, ge=1)  # trailing window of the stock-level median
    stock_drop_share: float = Field(0.5, gt=0, le=1)  # a drop: stock below (1 - share) x the trailing median
    stock_spike_factor: float = Field(2.0, gt=1)  # a spike: stock above factor x the trailing median

    @model_validator(mode="after")
    def _ordered(self) -> Kpis:
        if not self.new_days <= self.active_days < self.at_risk_days:
            raise ValueError("lifecycle thresholds must grow: new_days <= active_days < at_risk_days")
        return self


class Maintenance(BaseModel):
    """What `shoplake maintain` keeps: old table versions (vacuum) and archived landing files.

    Delta's own vacuum refuses a retention below a table's `delta.deletedFileRetentionDuration` (a week by
    default), because a reader still on an older snapshot (a long query, a Spark job) would lose its files.
    shoplake applies the retention set here even when shorter: maintain holds the lake's lease, so no
    batch runs meanwhile, but a reader outside shoplake may then see its query fail.
    """

    model_config = ConfigDict(extra="forbid")

    vacuum_retention_hours: int = Field(168, ge=0)  # table versions stay readable (show --as-of) this long
    archive_retention_days: float | None = Field(90, ge=0)  # archived landing files kept; null: forever
    compact_target_size: int | None = Field(None, ge=1_048_576)  # bytes per compacted file; None: the engine's

    @field_validator("compact_target_size", mode="before")
    @classmethod
    def _size(cls, value: Any) -> Any:
        """`128MB`, `1GiB` or a number of bytes."""
        if isinstance(value, str):
            found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]i?B|B)?\s*", value, re.IGNORECASE)
            if not found:
                raise ValueError(f"{value!r} is not a size; write it like 128MB, 1GiB or a number of bytes")
            unit = (found.group(2) or "B").upper()
            base = 1024 if "I" in unit else 1000
            return int(float(found.group(1)) * base ** "BKMG".index(unit[0]))
        return value


AlertLevel = Literal["info", "warning", "critical"]
ALERT_LEVELS: tuple[AlertLevel, ...] = ("info", "warning", "critical")  # least to most urgent
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def env_secret(variable: str) -> str:
    """The value of the environment variable holding a secret; missing or empty is an error, never ''."""
    value = os.environ.get(variable, "")
    if not value.strip():
        raise ValueError(f"environment variable {variable} is not set or is empty; export it before running "
                         "(secrets are read from the environment only, never from shoplake.yml)")
    return value


def _secret_variable(value: str | None) -> str | None:
    """A setting naming a secret's variable: a variable name (never the secret pasted in) that is set now."""
    if value is None:
        return None
    # The value is not echoed: someone may have pasted the secret itself here.
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("must be the name of an environment variable (such as SLACK_WEBHOOK_URL), not the secret")
    env_secret(value)
    return value


class WebhookAlerts(BaseModel):
    """A Slack-compatible incoming webhook; its URL holds a token, so only the variable holding it is named."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)  # the input may be a pasted secret

    url_env: str  # the environment variable holding the webhook URL
    timeout_seconds: float = Field(5.0, gt=0)  # per attempt; one retry after a failed attempt
    blocks: bool = True  # add Slack `blocks` (a section and a context line) next to the plain `text`

    @model_validator(mode="before")
    @classmethod
    def _no_url(cls, values: Any) -> Any:
        if isinstance(values, dict) and "url" in values:
            raise ValueError("the webhook URL is a secret: put it in an environment variable and name it as url_env")
        return values

    _url_env = field_validator("url_env", mode="after")(_secret_variable)


class EmailAlerts(BaseModel):
    """Alerts by mail through an SMTP server; the password only from the environment variable named."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    host: str
    port: int | None = Field(None, ge=1, le=65535)  # default: 465 with ssl, 587 with starttls, else 25
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    starttls: bool = False  # upgrade a plain connection with STARTTLS (port 587)
    ssl: bool = False  # TLS from the first byte (SMTPS, port 465)
    username: str | None = None
    password_env: str | None = None  # the environment variable holding the password
    timeout_seconds: float = Field(10.0, gt=0)

    _password_env = field_validator("password_env", mode="after")(_secret_variable)

    @model_validator(mode="after")
    def _consistent(self) -> EmailAlerts:
        if self.starttls and self.ssl:
            raise ValueError("choose one of starttls (port 587) and ssl (port 465)")
        if self.password_env and not self.username:
            raise ValueError("password_env is set without a username to log in with")
        if self.username and not self.password_env:
            raise ValueError("username is set without password_env (the variable holding its password)")
        return self

    @property
    def smtp_port(self) -> int:
        return self.port or (465 if self.ssl else 587 if self.starttls else 25)


class Alerts(BaseModel):
    """Where alerts go besides the log, from which level, and how soon the same alert may go again."""

    model_config = ConfigDict(extra="forbid")

    webhook: WebhookAlerts | None = None
    email: EmailAlerts | None = None
    min_level: AlertLevel = "warning"  # events below this level reach the log only
    resend_after_minutes: float = Field(60.0, ge=0)  # the same alert is not sent again this soon; 0: always


class Lineage(BaseModel):
    """Where each batch's OpenLineage run events go (START, then COMPLETE or FAIL); off unless file or url is set."""

    model_config = ConfigDict(extra="forbid")

    file: Path | None = None  # append each event as one JSON line to this file
    url: str | None = None  # POST each event to this OpenLineage server (e.g. Marquez: http://host:5000)
    endpoint: str = "api/v1/lineage"  # the server's path for events
    api_key_env: str | None = None  # the environment variable holding the server's API key (sent as Bearer)
    timeout_seconds: float = Field(5.0, gt=0)
    namespace: str = "shoplake"  # the job's namespace
    project: str | None = None  # the job is shoplake.<project>.batch; default: the lake folder's name

    @field_validator("url", mode="after")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://[^\s/]+(/\S*)?", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("api_key_env", mode="after")
    @classmethod
    def _key_variable(cls, value: str | None) -> str | None:
        # Only a variable's name: the key itself never sits in shoplake.yml; it must be set when the run starts.
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be the name of an environment variable holding the API key, not the key")
        if value is not None and not os.environ.get(value, "").strip():
            raise ValueError(f"environment variable {value} is not set or is empty; export it before running")
        return value

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.url is not None


class Monitoring(BaseModel):
    """What `shoplake monitor` judges and how strictly (README, monitor); `monitor_every` runs it from watch."""

    model_config = ConfigDict(extra="forbid")

    check_days: int = Field(7, ge=1)  # the newest business dates judged (missing files, volume, quarantine trend)
    stuck_minutes: float = Field(60.0, gt=0)  # a batch running longer than this, lease alive: warning
    arrival_grace_hours: float = Field(3.0, ge=0)  # a feed's next file is overdue this long after its usual arrival
    volume_weeks: int = Field(4, ge=1)  # volume baseline: the same weekday over this many weeks before the day
    volume_min_points: int = Field(3, ge=1)  # fewer same-weekday days: every day of those weeks; fewer still: none
    volume_z: float = Field(3.5, gt=0)  # robust z-score (median, MAD) a day must reach to be an anomaly
    volume_warn_change: float = Field(0.2, gt=0)  # ... and its rows this share off the median: warning
    volume_critical_low: float = Field(0.5, gt=0, lt=1)  # ... at most this share of the median: critical
    volume_critical_high: float = Field(2.0, gt=1)  # ... at least this multiple of the median: critical
    quarantine_rise: float = Field(0.05, gt=0, le=1)  # quarantine rate up this much across check_days: warning


def _no_password(value: str | None, what: str) -> str | None:
    """A PostgreSQL URL names user, host and database; its password comes from PGPASSWORD or ~/.pgpass."""
    if value is None or not value.startswith(("postgresql", "postgres:")):
        return value
    netloc = value.split("://", 1)[-1].split("/", 1)[0]
    if "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
        raise ValueError(f"{what} holds a password; remove it and export PGPASSWORD (or add it to ~/.pgpass)")
    return value


class Publish(BaseModel):
    """`shoplake publish` (and every batch of run and watch, once its audit passed): gold, and optionally
    silver and bronze, copied into a PostgreSQL database for BI tools (README, PostgreSQL)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, hide_input_in_errors=True)

    url: str  # postgresql://user@host:port/database, without the password
    gold_schema: str = Field("warehouse", alias="schema")  # gold's star schema and marts
    # Seed-style schemas: silver as `production`, bronze as `staging` (None: not published).
    silver_schema: str | None = None
    bronze_schema: str | None = None
    seed_schemas: bool = False  # shorthand: silver_schema production, bronze_schema staging
    state_schema: str = "shoplake"  # where publish_state records the Delta version each table holds

    @field_validator("url", mode="after")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not re.match(r"postgres(ql)?(\+psycopg)?://", value):
            raise ValueError(f"{value!r} is not a postgresql:// URL")
        _no_password(value, "the publish URL")
        return value

    @field_validator("gold_schema", "silver_schema", "bronze_schema", "state_schema", mode="after")
    @classmethod
    def _schema_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", value):
            raise ValueError(f"{value!r} is not a schema name (lower-case letters, digits and _)")
        return value

    @model_validator(mode="after")
    def _seed(self) -> Publish:
        if self.seed_schemas:
            self.silver_schema = self.silver_schema or "production"
            self.bronze_schema = self.bronze_schema or "staging"
        return self


class Settings(BaseModel):
    """Where files land and tables live, which engine runs, and the knobs a shop may turn."""

    model_config = ConfigDict(extra="forbid")

    # Folders or object-storage URIs (s3://bucket/prefix); a local lake also holds the state store and
    # spill space, a remote one keeps those in work_dir.
    landing: Path | str = Path("landing")
    lake: Path | str = Path("lake")
    archive: Path | str | None = None  # default: next to landing, named archive
    work_dir: Path | None = None  # local scratch for a remote lake (default ./.shoplake)
    engine: str = "duckdb"
    contracts: list[Path] = []  # project folders whose YAML contracts override or extend the built-in pack
    models: list[Path] = []  # project folders of extra or replacement gold models
    gold_models: list[str] | None = None  # build only these models and those they read; None: all
    checks: list[Path] = []  # project folders of checks (*.sql, *.yml); default: checks/ beside shoplake.yml
    state_url: str | None = None  # SQLAlchemy URL of the operational store; default SQLite in the lake
    memory_limit: str = "1GB"  # DuckDB engine
    threads: int | None = None  # DuckDB engine
    spark_master: str | None = None  # Spark engine: local[N], spark://host:7077, yarn; None: spark-submit's
    # or Databricks' session, else local[*]
    spark_conf: dict[str, str] = {}  # Spark engine: extra session settings
    batching: Batching = Batching()  # when `shoplake watch` starts a batch
    settle_seconds: float = 2.0  # watch: a file is read once its size and mtime are unchanged this long
    scan_seconds: float = 30.0  # watch: full listing of the landing store, the safety net under events
    lease_seconds: float = 60.0  # a running batch's lease; renewed while its process lives
    timezone: str = "UTC"  # the shop's IANA time zone: KPI days (local date of created_at), and the
    # business date of a landed file without a date in its name
    reporting_currency: str = "USD"  # marts sum amounts converted to this currency (fx_rates feed)
    kpis: Kpis = Kpis()  # thresholds of the KPI definitions
    maintenance: Maintenance = Maintenance()  # `shoplake maintain`: vacuum and archive retention
    monitor_every: float = Field(300.0, ge=0)  # watch: run the monitor every this many seconds; 0: never
    monitor: Monitoring = Monitoring()  # `shoplake monitor`: freshness, volume, quarantine trend, health
    lineage: Lineage = Lineage()  # OpenLineage run events of every batch, to a file or an HTTP endpoint
    alerts: Alerts = Alerts()  # webhook and email channels (secrets from the environment), dedup window
    publish: Publish | None = None  # copy gold (and silver/bronze) to PostgreSQL after every batch

    @field_validator("reporting_currency", mode="after")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        code = value.strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", code):
            raise ValueError(f"{value!r} is not a currency code; write three letters such as USD or EUR")
        return code

    @field_validator("publish", mode="before")
    @classmethod
    def _publish_url(cls, value: Any) -> Any:
        """`publish: postgresql://...` (or SHOPLAKE_PUBLISH) is the URL with every other default."""
        return {"url": value} if isinstance(value, str) else value

    @field_validator("state_url", mode="after")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        return _no_password(value, "state_url")

    @field_validator("lease_seconds", mode="after")
    @classmethod
    def _lease_long_enough(cls, value: float) -> float:
        # A shorter lease expires between heartbeats of a busy process (a long Delta commit, a GC pause).
        if not value >= MIN_LEASE_SECONDS:
            raise ValueError(f"must be at least {MIN_LEASE_SECONDS:g} seconds")
        return value

    @field_validator("memory_limit", mode="after")
    @classmethod
    def _memory_amount(cls, value: str) -> str:
        # Checked here, not when the engine starts: a bad setting must stop the run before it touches the lake.
        if not _MEMORY.fullmatch(value):
            raise ValueError(f"{value!r} is not an amount of memory; write it like 1GB, 512MiB or 80%")
        return value

    @field_validator("threads", mode="after")
    @classmethod
    def _some_threads(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("must be at least 1 (leave it out to use every core)")
        return value

    @field_validator("timezone", mode="after")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as UTC or Europe/Berlin)") from None
        return value

    @field_validator("landing", "lake", "archive", mode="after")
    @classmethod
    def _path_or_uri(cls, value: Path | str | None) -> Path | str | None:
        """A URI stays text; anything else is a local path."""
        if value is None or isinstance(value, Path):
            return value
        return value.rstrip("/") if "://" in value else Path(value)

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        name = value.strip().lower()
        if name not in ENGINES:
            raise ValueError(f"unknown engine {value!r} (choose one of: {', '.join(ENGINES)})")
        return name

    def model_parameters(self) -> dict[str, str | int | float]:
        """What gold models may read as the one row of `shoplake.settings`: the reporting currency, the
        time zone and the KPI thresholds, by these names."""
        return {"reporting_currency": self.reporting_currency, "timezone": self.timezone,
                **self.kpis.model_dump()}

    @property
    def tables_root(self) -> str:
        """Where the bronze/silver/quarantine/gold Delta tables live."""
        return self.lake if isinstance(self.lake, str) else str(self.lake.resolve())

    @property
    def archive_dir(self) -> Path | str:
        return self.archive or child_of(parent_of(self.landing), "archive")

    @property
    def scratch(self) -> Path:
        """Local space for spill files, downloaded landing files and the default state store."""
        if isinstance(self.lake, Path):
            return self.lake
        return self.work_dir or Path(".shoplake")

    @property
    def state_db_url(self) -> str:
        from shoplake.landing.ledger import database_url  # postgresql:// through psycopg 3

        return database_url(self.state_url) if self.state_url else \
            f"sqlite:///{(self.scratch / '_state' / 'shoplake.db').resolve()}"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the config file (if any), the environment, then explicit overrides (None = not given)."""
    values: dict[str, Any] = {}
    path = config_file or Path(CONFIG_FILE)
    if config_file is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.is_file():
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings")
        values.update(_relative_to(loaded, path.parent))
    for name in Settings.model_fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = (env.split(os.pathsep) if name in ("contracts", "models", "checks")
                            else [n.strip() for n in env.split(",") if n.strip()] if name == "gold_models" else env)
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_url=False))
        raise ConfigError(f"invalid settings ({path if path.is_file() else 'defaults'}): {problems}") from None
    project = path.parent if path.is_file() else Path(".")
    if not settings.contracts and (project / "contracts").is_dir():
        settings.contracts = [project / "contracts"]
    if not settings.checks and (project / "checks").is_dir():
        settings.checks = [project / "checks"]
    return settings


def _relative_to(values: dict[str, Any], base: Path) -> dict[str, Any]:
    """Paths in a config file are relative to the file, as a reader of the file expects (paths given
    on the command line or in the environment stay relative to the working directory)."""
    def fix(value: Any) -> Any:
        if value is None or "://" in str(value) or Path(str(value)).is_absolute():
            return value
        return str(base / str(value))

    fixed = dict(values)
    for name in ("landing", "lake", "archive", "work_dir"):
        if name in fixed:
            fixed[name] = fix(fixed[name])
    if isinstance(fixed.get("checks"), str):  # `checks: <folder>`: one folder
        fixed["checks"] = [fixed["checks"]]
    for name in ("contracts", "models", "checks"):
        if isinstance(fixed.get(name), list):
            fixed[name] = [fix(v) for v in fixed[name]]
    if isinstance(fixed.get("lineage"), dict) and fixed["lineage"].get("file") is not None:
        fixed["lineage"] = {**fixed["lineage"], "file": fix(fixed["lineage"]["file"])}
    return fixed
