"""OpenLineage run events for every batch (START, then COMPLETE or FAIL) to a file or an HTTP endpoint, so
that a lineage tool draws landed file -> bronze -> silver (and quarantine) -> gold.

The batch is one run of the job `shoplake.<project>.batch`: its inputs are the landed files, its outputs
the tables it wrote, each with the Delta version written. Once committed, each stage is told as a child run
of the batch (`...batch.bronze`, `...batch.silver`, `...batch.gold.<model>`) with its own inputs and outputs,
which is what gives a lineage graph its chain of tables rather than one job fanning out to all of them.

Lineage is an observer: an endpoint that is down or a file that cannot be written is logged, and never
fails or slows a batch beyond its timeout.
"""

from __future__ import annotations

import functools
import logging
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    dataset_version_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    nominal_time_run,
    parent_run,
    processing_engine_run,
    storage_dataset,
)
from openlineage.client.naming.dataset import LocalFileSystem
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport, TokenProvider
from openlineage.client.transport.transport import Transport

from shoplake.hooks import BatchContext, BatchHook
from shoplake.landing.ledger import FAILED
from shoplake.runs import RunHistory, changed_tables, table_name

if TYPE_CHECKING:
    from shoplake.config import Lineage, Settings
    from shoplake.layers.gold import Model

log = logging.getLogger("shoplake.lineage")

VERSION = "0.1.0"
PRODUCER = f"urn:shoplake:{VERSION}"
# Run ids are derived from batch ids (a UUID5 in this namespace): a reader can find a batch's run from its id.
RUN_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:shoplake:batch")
# Few quick retries: lineage must not hold a batch up for long when its server is down.
_RETRY = {"total": 2, "read": 2, "connect": 2, "backoff_factor": 0.2, "status_forcelist": [500, 502, 503, 504],
          "allowed_methods": ["HEAD", "POST"]}


def run_id(batch_id: str, stage: str | None = None) -> str:
    """The OpenLineage run id of a batch (or of one stage of it): the same for every event of the batch."""
    return str(uuid.uuid5(RUN_NAMESPACE, batch_id if stage is None else f"{batch_id}/{stage}"))


def transports(config: Lineage) -> list[Transport]:
    """The settings' destinations: a file of JSON lines, an HTTP endpoint, or both."""
    found: list[Transport] = []
    if config.file is not None:
        found.append(FileTransport(FileConfig(log_file_path=str(config.file), append=True)))
    if config.url is not None:
        key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""
        auth = ApiKeyTokenProvider({"api_key": key}) if key else TokenProvider({})
        found.append(HttpTransport(HttpConfig(url=config.url, endpoint=config.endpoint, timeout=config.timeout_seconds,
                                              auth=auth, retry=_RETRY)))
    return found


def file_dataset(location: str, rows: int | None = None) -> InputDataset:
    """A landed file, named as OpenLineage names files: `file` + its absolute path, or `s3://bucket` + its key."""
    if "://" in location:
        parts = urlsplit(location)
        namespace, name = f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    else:
        naming = LocalFileSystem(path=str(Path(location).resolve()))
        namespace, name = naming.get_namespace(), naming.get_name()
    facets = {} if rows is None else {
        "inputStatistics": input_statistics_input_dataset.InputStatisticsInputDatasetFacet(rowCount=rows)}
    return InputDataset(namespace=namespace, name=name, inputFacets=facets)  # type: ignore[arg-type]


def lake_namespace(lake: str) -> str:
    """The namespace of the lake's tables: its URI (file:///..., s3://bucket/prefix)."""
    return lake if "://" in lake else Path(lake).resolve().as_uri()


class LineageHook(BatchHook):
    """Emits a batch's run events; every failure to emit is logged and ignored."""

    def __init__(self, settings: Settings) -> None:
        config = settings.lineage
        self.settings = settings
        self.file = config.file
        self.clients = [OpenLineageClient(transport=t) for t in transports(config)]
        self.namespace = config.namespace
        project = config.project or str(settings.lake).rstrip("/").rsplit("/", 1)[-1] or "lake"
        self.job_name = f"shoplake.{project}.batch"
        self._catalogued: tuple[set[str], list[Model]] | None = None
        self._down: set[int] = set()  # the clients that failed in this batch

    # -- the hook points ---------------------------------------------------------------------------
    def started(self, batch: BatchContext) -> None:
        self._down.clear()
        self._emit(self._event(batch, RunState.START, self._files(batch, counted=False), []))

    def committed(self, batch: BatchContext) -> None:
        inputs = self._files(batch, counted=True)
        outputs = self._tables(batch)
        self._emit(self._event(batch, RunState.COMPLETE, inputs, list(outputs.values())))
        # A file that could not be read left no rows in bronze: it is the batch's input, not bronze's.
        readable = self._files(batch, counted=True, readable=True)
        for stage, stage_inputs, stage_outputs in self._stages(batch, readable, outputs):
            for state in (RunState.START, RunState.COMPLETE):
                self._emit(self._event(batch, state, stage_inputs, stage_outputs, stage=stage))

    def rolled_back(self, batch: BatchContext, error: str) -> None:
        # Every table is back at its version before the batch: a failed run wrote nothing.
        failure = error_message_run.ErrorMessageRunFacet(message=error, programmingLanguage="python")
        self._emit(self._event(batch, RunState.FAIL, self._files(batch, counted=True), [],
                               facets={"errorMessage": failure}))

    # -- events ------------------------------------------------------------------------------------
    def _event(self, batch: BatchContext, state: RunState, inputs: list[InputDataset], outputs: list[OutputDataset],
               *, stage: str | None = None, facets: dict[str, RunFacet] | None = None) -> RunEvent:
        run_facets: dict[str, RunFacet] = {
            "nominalTime": nominal_time_run.NominalTimeRunFacet(
                nominalStartTime=f"{batch.business_date.isoformat()}T00:00:00Z"),
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=VERSION, name=f"shoplake ({batch.settings.engine})"),
            **(facets or {})}
        if stage is not None:  # a stage is a child of the batch's run
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=run_id(batch.batch_id)),
                job=parent_run.Job(namespace=self.namespace, name=self.job_name),
                root=parent_run.Root(run=parent_run.RootRun(runId=run_id(batch.batch_id)),
                                     job=parent_run.RootJob(namespace=self.namespace, name=self.job_name)))
        job_facets: dict[str, JobFacet] = {"jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH", integration="SHOPLAKE", jobType="JOB" if stage is None else "TASK")}
        name = self.job_name if stage is None else f"{self.job_name}.{stage}"
        return RunEvent(eventType=state, eventTime=datetime.now(UTC).isoformat(), producer=PRODUCER,
                        run=Run(runId=run_id(batch.batch_id, stage), facets=run_facets),
                        job=Job(namespace=self.namespace, name=name, facets=job_facets),
                        inputs=inputs, outputs=outputs)

    def _emit(self, event: RunEvent) -> None:
        if self.file is not None:
            self.file.parent.mkdir(parents=True, exist_ok=True)
        for i, client in enumerate(self.clients):
            if i in self._down:
                continue
            try:
                client.emit(event)
            except Exception as error:  # lineage observes: its server being down never fails a batch
                # Not tried again until the next batch starts: one timeout per batch, not one per event.
                self._down.add(i)
                log.warning("OpenLineage events of run %s not sent to %s from %s on: %s", event.run.runId,
                            client.transport.kind, event.eventType.value if event.eventType else "?", error)

    def _files(self, batch: BatchContext, *, counted: bool, readable: bool = False) -> list[InputDataset]:
        """The batch's landed data files (trigger files carry no rows), with the rows read once counted;
        `readable`: only those read without error."""
        files = {f.file: f for f in batch.outcome.files}
        found = []
        for row in batch.ledger.batch_files(batch.batch_id):
            f = files.get(row["relative"])
            if row["feed"] is None or (readable and (f is None or f.status == FAILED)):
                continue
            found.append(file_dataset(row["path"], f.rows_read if counted and f is not None else None))
        return found

    def _tables(self, batch: BatchContext) -> dict[str, OutputDataset]:
        """The tables the batch wrote, by name (silver.orders), each with the Delta version it wrote."""
        namespace = lake_namespace(batch.lake)
        outputs = {}
        for path, (_, after) in sorted(changed_tables(batch).items()):
            if after is None:
                continue
            name = table_name(batch.lake, path)
            outputs[name] = OutputDataset(namespace=namespace, name=name, facets={
                "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=str(after)),
                "storage": storage_dataset.StorageDatasetFacet(storageLayer="delta", fileFormat="parquet")})
        return outputs

    def _stages(self, batch: BatchContext, files: list[InputDataset], outputs: dict[str, OutputDataset]
                ) -> list[tuple[str, list[InputDataset], list[OutputDataset]]]:
        """The batch's stages as (name, inputs, outputs): bronze from the files, silver and quarantine from
        bronze, each gold model from the silver and gold tables it reads."""
        namespace = lake_namespace(batch.lake)

        def read(*names: str) -> list[InputDataset]:
            return [InputDataset(namespace=namespace, name=n) for n in names]

        @functools.cache
        def exists(path: str) -> bool:
            return batch.engine.table_version(path) is not None

        def layer(*layers: str) -> list[OutputDataset]:
            return [d for name, d in outputs.items() if name.split(".", 1)[0] in layers]

        stages = []
        bronze = layer("bronze")
        if bronze:
            stages.append(("bronze", files, bronze))
        silver = layer("silver", "quarantine")
        if silver:
            # A replay reads the quarantine instead of bronze.
            sources = [d.name for d in bronze] if bronze else [f"quarantine.{d.name.split('.')[-1]}" for d in silver
                                                                if d.name.startswith("quarantine.")]
            stages.append(("silver", read(*sources), silver))
        feeds, models = self._catalogue()
        for model in models:
            table = outputs.get(f"gold.{model.name}")
            if table is None:
                continue
            # A source that has no table (an optional feed never loaded) is read as no rows: not an input.
            sources = sorted(s for s in {_feed_of(s, feeds) for s in model.sources}
                             if f"silver.{s}" in outputs or exists(f"{batch.lake}/silver/{s}"))
            stages.append((f"gold.{model.name}", read(*(f"silver.{s}" for s in sources),
                                                       *(f"gold.{d}" for d in sorted(model.depends_on))), [table]))
        return stages

    def _catalogue(self) -> tuple[set[str], list[Model]]:
        """The feeds and gold models (what each model reads), loaded once per session and only with lineage on."""
        if self._catalogued is None:
            from shoplake.contracts import load_contracts
            from shoplake.layers import gold

            contracts = load_contracts(self.settings.contracts)
            models = gold.load_models(self.settings.models, contracts=contracts)
            self._catalogued = ({c.feed for c in contracts}, models)
        return self._catalogued


def _feed_of(source: str, feeds: set[str]) -> str:
    """The silver table a model's source is: `customers_history` is silver.customers (all its versions)."""
    stem = source.removesuffix("_history")
    return stem if source != stem and stem in feeds else source


def run_observers(settings: Settings) -> list[BatchHook]:
    """The hooks that record what a batch did: its run history always, its OpenLineage events when
    `lineage:` names a file or a URL."""
    return [RunHistory(), *([LineageHook(settings)] if settings.lineage.enabled else [])]
