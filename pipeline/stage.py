"""What a stage is: its spec in the application's stage table, and its work. The runtime
(:mod:`pipeline.runtime`) does the rest.

An application declares its stages in one :class:`StageTable`, a :class:`StageSpec` per
stage in pipeline order; the job store, the runtime and the worker derive everything about
stages from it. A stage's :meth:`Stage.process` runs in a worker thread, so it may block on
model calls. It reads its inputs from, and writes its outputs to, the job's files
(:class:`pipeline.files.JobFiles`); the runtime records the stage as done and hands the job
to the next stage of the job's plan in one atomic step once ``process`` returns.

A table may also list observers (:class:`ObserverSpec`): stages outside every plan that
get an event when a job ends (or a stage of it finishes), run an :class:`Observer`, and
never change the job.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar, overload

from pipeline.files import JobFiles
from pipeline.settings import Settings
from pipeline.types import (
    COMPLETED,
    CORE_STATUSES,
    FAILED,
    EventMessage,
    Job,
    Options,
    OptionsT,
    Status,
)

S = TypeVar("S", bound=Settings)
F = TypeVar("F", bound=JobFiles)

#: The stage table that ``stt-worker`` and ``python -m pipeline.settings`` use.
APPLICATION_TABLE = "stages.table:TABLE"


@dataclass
class JobContext(Generic[S, OptionsT, F]):
    """Everything a stage gets to work on one job. The types are the stage table's: its
    settings object, its options and its job files."""

    job: Job[OptionsT]
    files: F
    settings: S
    log: logging.LoggerAdapter[logging.Logger]
    # Set by the runtime: records progress and raises JobGone / OwnershipLost when the job
    # was cancelled or claimed by another worker, which stops the stage at that point.
    report: Callable[[float, str | None], None] = field(repr=False)

    @property
    def job_id(self) -> str:
        return self.job.id

    def progress(self, fraction: float, detail: str | None = None) -> None:
        """Report progress in [0, 1] of this stage. Cheap to call often: it is throttled.

        Raises :class:`pipeline.errors.JobGone` when the job was cancelled or deleted, so a
        long-running stage stops at its next progress report.
        """
        # float(): numpy scalars would reach Redis as "np.float64(0.5)".
        self.report(min(max(float(fraction), 0.0), 1.0), detail)


class Worked(abc.ABC, Generic[S]):
    """What a worker process runs, stage or observer: named by its spec, checked at start
    and set up once."""

    name: ClassVar[str]

    def check(self, settings: S) -> None:
        """Called once when a worker starts, before it connects or loads anything: raise
        :class:`pipeline.errors.IncompatibleInstall` when a library it patches is not a
        version it was written for (see :mod:`pipeline.compat`)."""

    def setup(self, settings: S) -> None:
        """Load what it needs once per worker process (models), before any job."""


class Stage(Worked[S], Generic[S, OptionsT, F]):
    """One step of the pipeline. Subclasses set ``name`` (their spec's) and implement
    :meth:`process`."""

    @abc.abstractmethod
    def process(self, ctx: JobContext[S, OptionsT, F]) -> None:
        """Do the stage's work for ``ctx.job``. Raise PermanentError for bad input."""


@dataclass
class EventContext(Generic[S]):
    """Everything an observer gets for one attempt at one event."""

    event: EventMessage
    settings: S
    log: logging.LoggerAdapter[logging.Logger]

    @property
    def job_id(self) -> str:
        return self.event.job_id


class Observer(Worked[S]):
    """What an observer stage runs: one attempt at handling an event of a job (see
    :class:`ObserverSpec`). Subclasses set ``name`` (their spec's) and implement
    :meth:`handle`, which runs in a worker thread."""

    @abc.abstractmethod
    def handle(self, ctx: EventContext[S]) -> None:
        """One attempt. Return when done; raise RetryLater to be called again later with
        the next ``ctx.event.attempt``, PermanentError to give up."""


def _always(options: Options) -> bool:
    return True


def _never(options: Options) -> bool:
    return False


def _one(settings: Settings) -> int:
    return 1


@dataclass(frozen=True, kw_only=True)
class StageSpec(Generic[OptionsT]):
    """Everything the core knows of one stage."""

    name: str  # its streams and consumer groups are named after it
    stage: str  # its Stage class as "module:Class", imported only by its own workers
    running: Status  # the job's status while the stage has it
    weight: float  # its share of a job's overall progress, by typical running time
    # Artifacts (names in the job's folder, see JobFiles.artifact) it reads and writes.
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # A model stage: its worker hands the memory a job freed back to the system after
    # each job (pipeline.allocator.give_back), so that an idle worker holds only its models.
    gives_back_memory: bool = False
    # Whether a job with these options runs through the stage (else it is skipped).
    runs: Callable[[OptionsT], bool] = _always


@dataclass(frozen=True, kw_only=True)
class ObserverSpec(Generic[OptionsT]):
    """A stage that is no step of a job's plan but follows the jobs: it gets an entry on
    its own stream when a job whose options it ``observes`` completes or fails (and, where
    ``each_stage``, whenever a stage of the job finishes). Its outcome never changes the job;
    the job keeps the observer's state (:class:`pipeline.types.ObserverRecord`)."""

    name: str  # its stream and consumer group are named after it
    stage: str  # its Observer class as "module:Class"
    observes: Callable[[OptionsT], bool] = _always
    each_stage: Callable[[OptionsT], bool] = _never
    # How many events one worker process handles at once (each as a consumer of its own),
    # from the settings: so that one slow event never holds up the others.
    concurrency: Callable[[Any], int] = _one


@dataclass(frozen=True)
class Event:
    """An event queued for an observer together with the job change that caused it."""

    observer: str
    event: str  # the terminal status the job reached, or the stage that finished
    status: str  # the job's status after the change


@dataclass(frozen=True, kw_only=True)
class StageTable(Generic[OptionsT]):
    """An application's stages in pipeline order, and the types its jobs are made of."""

    stages: tuple[StageSpec[OptionsT], ...]
    options: type[OptionsT]
    status: type[Status]  # the core statuses and each stage's running status
    settings: type[Settings] = Settings  # the one settings object every process reads
    files: type[JobFiles] = JobFiles
    observers: tuple[ObserverSpec[OptionsT], ...] = ()

    def __post_init__(self) -> None:
        if len(set(self.workers)) != len(self.workers) or not self.stages:
            raise ValueError(f"stage names must be unique and present: {self.workers}")
        statuses = {s.value for s in self.status}
        expected = {*CORE_STATUSES, *(spec.running.value for spec in self.stages)}
        if statuses != expected:
            raise ValueError(f"{self.status.__name__} must be exactly {sorted(expected)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.stages)

    @property
    def workers(self) -> tuple[str, ...]:
        """Every stage a worker consumes: the pipeline's, then the observers."""
        return self.names + tuple(spec.name for spec in self.observers)

    def spec(self, name: str) -> StageSpec[OptionsT]:
        for spec in self.stages:
            if spec.name == name:
                return spec
        raise ValueError(f"no stage {name!r}: the stages are {', '.join(self.names)}")

    def observer(self, name: str) -> ObserverSpec[OptionsT] | None:
        return next((spec for spec in self.observers if spec.name == name), None)

    def events(self, options: OptionsT, stage: str, status: str) -> tuple[Event, ...]:
        """The events to queue when ``stage`` of a job with ``options`` finished and the job
        took ``status`` (a stage's running status, or completed or failed)."""
        found: list[Event] = []
        for spec in self.observers:
            if not spec.observes(options):
                continue
            if status != FAILED and spec.each_stage(options):
                found.append(Event(spec.name, stage, status))
            if status in (COMPLETED, FAILED):
                found.append(Event(spec.name, status, status))
        return tuple(found)

    def plan(self, options: OptionsT) -> tuple[str, ...]:
        """The stages a fresh job with these options runs through, in order."""
        return tuple(spec.name for spec in self.stages if spec.runs(options))

    def rerun_plan(self, from_stage: str, options: OptionsT, before: OptionsT) -> tuple[str, ...]:
        """The stages a rerun from ``from_stage`` with ``options`` runs through, when the
        job's previous run had the options ``before``. Raises ValueError (a readable reason)
        when the rerun cannot start there."""
        full = self.plan(options)
        if from_stage not in full:
            self.spec(from_stage)  # raises for a name that is no stage at all
            raise ValueError(f"{from_stage} is not part of this job with these options")
        plan = full[full.index(from_stage):]
        ran = self.plan(before)
        for skipped in full[:full.index(from_stage)]:
            if skipped not in ran:
                raise ValueError(f"the job's last run skipped {skipped}: rerun it from "
                                 f"{skipped} first")
        return plan

    def needs(self, stage: str, options: OptionsT) -> tuple[str, ...]:
        """The artifacts a run of a job with ``options`` that starts at ``stage`` needs:
        what the stage reads that the job's upload or one of its planned stages provides
        (an artifact of a stage the options skip is not read)."""
        plan = self.plan(options)
        writers = {name: spec.name for spec in self.stages for name in spec.writes}
        return tuple(name for name in self.spec(stage).reads
                     if name not in writers or writers[name] in plan)

    def progress(self, plan: tuple[str, ...], stage: str, fraction: float) -> float:
        """The job's progress in percent when ``stage`` of ``plan`` is ``fraction`` done."""
        weight = {spec.name: spec.weight for spec in self.stages}
        total = sum(weight[s] for s in plan)
        before = sum(weight[s] for s in plan[: plan.index(stage)])
        return round(100.0 * (before + weight[stage] * fraction) / total, 1)


def load(path: str) -> Any:
    """The object an import path (``module:name``) names."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def load_table(path: str = APPLICATION_TABLE) -> StageTable[Any]:
    table = load(path)
    if not isinstance(table, StageTable):
        raise TypeError(f"{path} is not a StageTable")
    return table


@overload
def load_stage(spec: StageSpec[Any], path: str | None = None) -> Stage[Any, Any, Any]: ...
@overload
def load_stage(spec: ObserverSpec[Any], path: str | None = None) -> Observer[Any]: ...
def load_stage(spec: StageSpec[Any] | ObserverSpec[Any],
               path: str | None = None) -> Stage[Any, Any, Any] | Observer[Any]:
    """A new instance of the spec's Stage (or Observer) class, or of the class ``path``
    names."""
    path = path or spec.stage
    cls = load(path)
    kind = Observer if isinstance(spec, ObserverSpec) else Stage
    if not (isinstance(cls, type) and issubclass(cls, kind)):
        raise TypeError(f"{path} is not a{'n Observer' if kind is Observer else ' Stage'} "
                        "class")
    if cls.name != spec.name:
        raise TypeError(f"{path} is the {cls.name} stage, not {spec.name}")
    stage: Stage[Any, Any, Any] | Observer[Any] = cls()
    return stage
