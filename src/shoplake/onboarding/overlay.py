"""Overlay contracts for a foreign export: one YAML per feed, with a comment wherever a person must decide.

A matched built-in feed keeps its rules, load mode and checks for every column the export has; a
column it lacks is left out (and named in a comment), except a column the gold models read, which
becomes a NULL placeholder in `derived:` so the models still run. A file that matches no built-in feed
becomes a feed of its own, named after the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from shoplake.contracts import ContractSet
from shoplake.contracts.expressions import column_names, parse_boolean, parse_expression
from shoplake.contracts.model import SQL_TYPES, Column, ColumnType, Contract, LoadMode
from shoplake.onboarding.inputs import ModelInputs
from shoplake.onboarding.match import FeedMatch, feed_by_name, fits, match_by_header, match_columns, singular
from shoplake.onboarding.profile import FileProfile, normalise


@dataclass
class PlannedColumn:
    name: str
    spec: dict[str, Any]
    comment: str = ""


@dataclass
class FeedPlan:
    """What one overlay contract will say, and the comments that go with it."""

    feed: str
    files: list[FileProfile]
    builtin: bool
    description: str
    primary_key: list[str]
    load: dict[str, Any]
    columns: list[PlannedColumn] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    derived: dict[str, str | dict[str, str]] = field(default_factory=dict)  # name -> expression (and type)
    derived_comments: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # comment lines above the contract
    todo: list[str] = field(default_factory=list)  # comment lines for what could not be matched
    extra: dict[str, Any] = field(default_factory=dict)  # grain, schema_drift, freshness
    by_folder: bool = False  # matched by the name of the folder its files are in (raw-data/order-items/)

    @property
    def null_values(self) -> list[str]:
        seen = {m for f in self.files for m in f.null_markers}
        return ["", *sorted(seen - {""})]

    @property
    def patterns(self) -> list[str]:
        """Patterns that match the export's file names and later drops of them (dated or in a folder)."""
        out: list[str] = []
        for f in self.files:
            folder, _, name = f.relative.rpartition("/")
            base = name[: -len(".csv")] if name.lower().endswith(".csv") else name
            plain = base.rstrip("0123456789_-") or base
            # A feed's own folder holds its files whatever their names; elsewhere the name tells the feed.
            shapes = ["*.csv"] if self.by_folder and folder else [f"{plain}*.csv", f"{plain}/*.csv"]
            for pattern in shapes:
                full = f"{folder}/{pattern}" if folder else pattern
                if full not in out:
                    out.append(full)
        return out


def plan_feed(contract: Contract, match: FeedMatch, files: list[FileProfile], builtin: ContractSet,
              inputs: ModelInputs, export_feeds: set[str]) -> FeedPlan:
    """The overlay of a built-in feed for the files that matched it."""
    plan = FeedPlan(feed=contract.feed, files=files, builtin=True,
                    description=f"{contract.description or contract.feed} (overlay for {files[0].relative})",
                    primary_key=list(contract.primary_key), load={})
    plan.notes.append(f"matched to the built-in feed {contract.feed}; sample: {match.file.rows:,} row(s) of "
                      f"{match.file.relative}{'' if match.file.complete else ' (the file has more)'}")
    taken = {m.header for m in match.columns.values()}
    for column in contract.columns:
        found = match.columns.get(column.name)
        if found is None:
            continue
        profile = match.file.column(found.header)
        spec = _builtin_spec(column)
        notes: list[str] = []
        if found.header != column.name:
            spec["source"] = found.header
        if found.how in ("synonym", "content"):
            notes.append(f"matched by {found.how}: check it")
        _fit_to_sample(column, profile, spec, notes, key=column.name in contract.primary_key)
        ref = spec.get("references")
        if ref and ref.split(".")[0] not in export_feeds:
            del spec["references"]
            notes.append(f"references {ref} dropped: the export has no {ref.split('.')[0]} file")
        plan.columns.append(PlannedColumn(column.name, spec, "; ".join(notes)))
    for profile in match.file.columns:
        if profile.header not in taken:
            plan.columns.append(_new_column(profile, plan, note=f"not a column of the built-in {contract.feed} feed; "
                                            "type inferred from the sample"))
    present = {c.name for c in plan.columns}
    feed_inputs = inputs.get(contract.feed, {})
    for column in contract.columns:
        if column.name in present:
            continue
        models = sorted(feed_inputs.get(column.name, ()))
        what = f"{column.name} ({column.type.value}{', required' if column.required else ''})"
        if models:
            sql_type = SQL_TYPES[column.type]
            plan.derived[column.name] = f"cast(null as {sql_type})"
            plan.derived_comments[column.name] = (
                f"TODO: {what} is not in {files[0].relative} but gold model(s) {', '.join(models)} read it: NULL "
                f"until you replace this with an expression over the file's columns, or declare it under columns "
                f"with `source: <header>`{_consequence(contract.feed, column.name)}")
        else:
            plan.todo.append(f"{what}: no header of {files[0].relative} matched; if the export has it under "
                             f"another name, add `{column.name}: {{type: {column.type.value}, source: <header>}}` "
                             "under columns")
    _carry_logic(contract, plan)
    _guard_references(plan, builtin)
    return plan


def _consequence(feed: str, column: str) -> str:
    if (feed, column) in (("orders", "status"), ("order_items", "status")):
        return "; with a NULL status fact_sales counts no sale (it keeps statuses other than 'cancelled')"
    return ""


def plan_new_feed(file: FileProfile, feed: str, builtin: ContractSet) -> FeedPlan:
    """A feed of its own for a file that matches no built-in feed."""
    plan = FeedPlan(feed=feed, files=[file], builtin=False, description=f"{file.relative} as exported",
                    primary_key=[], load={"mode": LoadMode.UPSERT.value})
    plan.notes.append(f"{file.relative} matches no built-in feed ({', '.join(sorted(builtin.contracts))}); "
                      f"written as a new feed {feed}; sample: {file.rows:,} row(s)")
    key_name = f"{singular(feed)}_id"
    key = next((p for p in file.columns if normalise(p.header) in (key_name, "id") and p.unique), None)
    if key is None:
        key = next((p for p in file.columns if p.unique), None)
        if key is not None:
            plan.notes.append(f"primary key guessed: {key.header} is the first column whose sample values are all "
                              "present and distinct; check it")
    if key is None:
        key = file.columns[0]
        plan.load = {"mode": LoadMode.APPEND.value}
        plan.notes.append(f"TODO: no column of the sample is distinct in every row; primary key set to {key.header} "
                          "with load mode append: set primary_key to the columns that identify a row")
    for profile in file.columns:
        name = key_name if profile is key and normalise(profile.header) == "id" else None
        column = _new_column(profile, plan, name=name)
        if profile is key:
            column.spec["required"] = True
            plan.primary_key = [column.name]
        plan.columns.append(column)
    return plan


def _builtin_spec(column: Column) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": column.type.value}
    for name in ("required", "format", "case", "references", "accepted_values", "map"):
        value = getattr(column, name)
        if value:
            spec[name] = list(value) if isinstance(value, tuple) else value
    return spec


def _fit_to_sample(column: Column, profile: Any, spec: dict[str, Any], notes: list[str], *, key: bool) -> None:
    """Adjust a built-in column's checks to what the sample shows, saying so in its comment."""
    if not fits(column, profile):
        spec["type"] = profile.inferred.value
        example = next(v for v in profile.values if v)
        notes.append(f"built-in type {column.type.value}, but the sample holds values such as {example!r}: "
                     f"{profile.inferred.value}")
        spec.pop("format", None)
    if column.format == "email" and "format" in spec and not profile.looks_like_email:
        del spec["format"]
        notes.append("format email dropped: fewer than 90 % of the sample are e-mail addresses")
    if column.accepted_values:
        seen = {_cased(v, column.case) for v in profile.values}
        mapped = {column.map.get(v, v) if column.map else v for v in seen}
        new = sorted(mapped - set(column.accepted_values))
        if new:
            spec["accepted_values"] = [*column.accepted_values, *new]
            notes.append(f"accepted_values extended by the sample's {', '.join(new)}; map them to a built-in value "
                         "with `map:` where they mean the same")
    if (column.required or key) and profile.nulls:
        empty = sum(profile.nulls.values())
        notes.append(f"required, but {empty} sample row(s) are empty: those rows go to quarantine")


def _cased(value: str, case: str | None) -> str:
    return value.lower() if case == "lower" else value.upper() if case == "upper" else value


def _new_column(profile: Any, plan: FeedPlan, *, name: str | None = None, note: str = "") -> PlannedColumn:
    column = name or normalise(profile.header) or f"column_{profile.position + 1}"
    taken = {c.name for c in plan.columns}
    while column in taken or column.startswith("_"):
        column = f"{column.strip('_')}_{profile.position + 1}"
    spec: dict[str, Any] = {"type": profile.inferred.value}
    if column != profile.header:
        spec["source"] = profile.header
    if not profile.values:
        note = "; ".join(filter(None, [note, "empty in the whole sample: typed as string"]))
    return PlannedColumn(column, spec, note)


def _carry_logic(contract: Contract, plan: FeedPlan) -> None:
    """Load mode, rules and derived columns of the built-in feed, for the columns the overlay has."""
    present = {c.name for c in plan.columns}
    load: dict[str, Any] = {"mode": contract.load.mode.value}
    if contract.load.sequence in present:
        load["sequence"] = contract.load.sequence
    elif contract.load.sequence:
        plan.notes.append(f"load.sequence {contract.load.sequence} is not in the export: "
                          + ("the last row of a key wins" if contract.load.mode is LoadMode.UPSERT else
                             "a version starts when its file is ingested"))
    tracked = [t for t in contract.load.tracked if t in present]
    if tracked:
        load["tracked"] = tracked
    plan.load = load
    known = present | set(plan.derived)
    for name, spec in contract.derived.items():
        if name in present:
            plan.todo.append(f"derived {name} of the built-in feed left out: the file has a column {name} itself")
            continue
        missing = sorted(column_names(parse_expression(spec.expr)) - known)
        if missing:
            plan.todo.append(f"derived {name} of the built-in feed left out: it reads {', '.join(missing)}")
            continue
        plan.derived[name] = {"expr": spec.expr, "type": spec.type.value} if spec.type else spec.expr
        known.add(name)
    for rule in contract.rules:
        missing = sorted(column_names(parse_boolean(rule.expr)) - known)
        if missing:
            plan.todo.append(f"rule {rule.name} of the built-in feed left out: it reads {', '.join(missing)}")
            continue
        entry: dict[str, Any] = {"name": rule.name, "expr": rule.expr}
        if rule.severity.value != "quarantine":
            entry["severity"] = rule.severity.value
        if rule.message:
            entry["message"] = rule.message
        plan.rules.append(entry)
    plan.extra = {"grain": contract.grain, "schema_drift": contract.schema_drift.value}


def _guard_references(plan: FeedPlan, builtin: ContractSet) -> None:
    """A key other built-in feeds reference must keep the built-in type, else their references break."""
    for column in plan.columns:
        if column.name in plan.primary_key and column.spec.get("type") != ColumnType.INTEGER.value:
            users = sorted(c.feed for c in builtin for _, parent, pc in c.references
                           if parent == plan.feed and pc == column.name and c.feed != plan.feed)
            if users:
                column.comment = "; ".join(filter(None, [column.comment, (
                    f"note: the built-in {', '.join(users)} feed(s) reference it as an integer")]))


def link_references(plans: list[FeedPlan]) -> None:
    """A column named after another exported feed's key references that feed (distribution_center_id)."""
    keys = {p.primary_key[0]: p.feed for p in plans if len(p.primary_key) == 1}
    for plan in plans:
        for column in plan.columns:
            parent = keys.get(column.name)
            if parent and parent != plan.feed and "references" not in column.spec:
                column.spec["references"] = f"{parent}.{column.name}"
                column.comment = "; ".join(filter(None, [column.comment, f"references the export's {parent} file"]))


def render(plan: FeedPlan) -> str:
    """The overlay as YAML text, comments in place."""
    lines = [f"# {note}" for note in plan.notes]
    lines.append("# Generated by `shoplake init --from`; the README's contract section lists every field.")
    lines += [f"feed: {plan.feed}", f"description: {_flow(plan.description)}", f"files: {_flow(plan.patterns)}"]
    if plan.extra.get("grain"):
        lines.append(f"grain: {_flow(plan.extra['grain'])}")
    lines.append(f"primary_key: {_flow(plan.primary_key)}")
    lines.append(f"load: {_flow(plan.load)}")
    lines.append(f"schema_drift: {plan.extra.get('schema_drift', 'rescue')}")
    lines.append(f"null_values: {_flow(plan.null_values)}  # seen in the sample")
    lines.append("columns:")
    for column in plan.columns:
        comment = f"  # {column.comment}" if column.comment else ""
        lines.append(f"  {column.name}: {_flow(column.spec)}{comment}")
    for todo in plan.todo:
        lines.append(f"  # TODO {todo}")
    if plan.rules:
        lines.append("rules:")
        for rule in plan.rules:
            lines.append(f"  - {_flow(rule)}")
    if plan.derived:
        lines.append("derived:")
        for name, text in plan.derived.items():
            if name in plan.derived_comments:
                lines.append(f"  # {plan.derived_comments[name]}")
            lines.append(f"  {name}: {_flow(text)}")
    return "\n".join(lines) + "\n"


def _flow(value: Any) -> str:
    return str(yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True,
                              sort_keys=False)).strip().removesuffix("...").strip()


def plan_export(files: list[FileProfile], builtin: ContractSet,
                inputs: ModelInputs) -> tuple[list[FeedPlan], list[str]]:
    """Every file to a feed plan; returns the plans and report lines."""
    report: list[str] = []
    feeds = sorted(builtin.contracts)
    candidates: dict[str, list[FeedMatch]] = {}
    unmatched: list[FileProfile] = []
    by_folder: set[str] = set()
    for file in files:
        folder = file.relative.rpartition("/")[0].rpartition("/")[2]  # raw-data/order-items/part-0000.csv
        feed = feed_by_name(file.stem, feeds)
        if feed is None and folder and (feed := feed_by_name(normalise(folder), feeds)):
            by_folder.add(file.relative)
        found = match_columns(builtin[feed], file) if feed else match_by_header(list(builtin), file)
        if found is not None and found.key_matched:
            candidates.setdefault(found.contract.feed, []).append(found)
        else:
            if found is not None:
                report.append(f"{file.relative}: its name suggests feed {found.contract.feed}, but no header matched "
                              f"its key {', '.join(found.contract.primary_key)}")
            unmatched.append(file)
    chosen: dict[str, FeedMatch] = {}
    for feed, matches in candidates.items():
        best = max(matches, key=lambda m: m.coverage)
        chosen[feed] = best
        for m in matches:  # files of another name that also looked like this feed become feeds of their own
            if m.file.stem != best.file.stem:
                unmatched.append(m.file)
                report.append(f"{m.file.relative}: also looks like feed {feed}, which {best.file.relative} fits better")
    taken = set(chosen)
    new_names: dict[str, list[FileProfile]] = {}
    for file in unmatched:
        name = file.stem if file.stem not in builtin.contracts and file.stem not in taken else f"{file.stem}_export"
        new_names.setdefault(name, []).append(file)
    export_feeds = taken | set(new_names)
    plans = []
    for feed, match in chosen.items():
        same = [m.file for m in candidates[feed] if m.file.stem == match.file.stem]
        plans.append(plan_feed(builtin[feed], match, same, builtin, inputs, export_feeds))
        plans[-1].by_folder = match.file.relative in by_folder
        report.append(f"{', '.join(f.relative for f in same)} -> feed {feed}: {len(match.columns)} of "
                      f"{len(builtin[feed].columns)} built-in column(s) matched")
    for name, group in new_names.items():
        plan = plan_new_feed(group[0], name, builtin)
        plan.files = group
        plans.append(plan)
        report.append(f"{', '.join(f.relative for f in group)} -> new feed {name} (matches no built-in feed): "
                      f"primary key {', '.join(plan.primary_key)}; check contracts/{name}.yml")
    link_references(plans)
    return plans, report
