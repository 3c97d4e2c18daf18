"""Served models by name, and their hot reload: the model-server side of the service.

A :class:`ModelRegistry` holds one :class:`~service.pipeline.LivenessPipeline` per served
model: the default one (``LIVENESS_MODEL_PATH``, under its metadata name) and every
``name=path`` of ``LIVENESS_MODELS``. Pipelines share the face stage (one per input size)
and the RGB expert. :meth:`ModelRegistry.get` hands out the current pipeline of a name;
callers keep that object for the whole analysis, so a reload never changes a model under
a request.

:meth:`ModelRegistry.check_reloads` looks for changed files (mtime, size and inode, then
sha256). A changed file is loaded, validated and warmed beside the served one and then
swapped in with one reference assignment; the old engine is not closed, so requests in
flight finish on it (ONNX Runtime frees it with its last reference). A file that fails is
refused: the error is kept (``reload_error``), counted, logged, and the old model serves
on. The same broken file is not tried again until it changes.

The camera daemon can use the same object: ``ModelRegistry.load(settings)`` loads every
model, ``registry.get(name)`` gives the pipeline to analyse a frame with, and calling
``check_reloads()`` from a thread keeps them current.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.engine import InferenceEngine, ModelLoadError, file_sha256
from service.errors import ServiceError
from service.pipeline import FaceStageLike, LivenessPipeline, build_face_stage, load_rgb_expert
from service.rgb_expert import RgbExpert
from service.settings import parse_model_entries

logger = logging.getLogger(__name__)

#: Outcomes of a reload (label of ``liveness_model_reloads_total``).
RELOAD_SWAPPED = "swapped"
RELOAD_REJECTED = "rejected"
#: Not a reload: a refused file was replaced by the one serving (the error is cleared).
RELOAD_RESTORED = "restored"


class UnknownModelError(ServiceError):
    """A request names a model this server does not serve."""

    kind = "unknown-model"
    title = "Unknown model"

    def __init__(self, name: str, known: list[str], *, field: str, status: int = 422) -> None:
        shown = repr(name) if len(name) <= 64 else f"{name[:64]!r}… ({len(name)} characters)"
        super().__init__(
            f"{field}: no model named {shown}; this server serves {', '.join(known)}",
            field=field,
        )
        self.status = status


#: (mtime_ns, size, inode, ctime_ns): an in-place rewrite moves mtime, a replacement by
#: rename (the safe way to publish a model) moves the inode even within one clock tick.
FileState = tuple[int, int, int, int]


def _file_state(path: Path) -> FileState | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


@dataclass
class ServedModel:
    """One name's current pipeline, where it came from, and how its reloads went."""

    name: str
    path: Path
    pipeline: LivenessPipeline
    default: bool = False
    loaded_at: float = field(default_factory=time.time)
    #: The file state the served model was read from (or the last state handled).
    file_state: FileState | None = None
    #: Why the file on disk does not serve (None when it does).
    reload_error: str | None = None
    reload_failed_at: float | None = None
    #: Owned engines are closed with the registry; an injected one is its owner's.
    owned: bool = True

    @property
    def engine(self) -> InferenceEngine:
        return self.pipeline.engine


class ModelRegistry:
    """The served models by name; thread-safe (requests read, a reloader swaps)."""

    def __init__(
        self,
        settings: Any,
        *,
        expert: RgbExpert | None = None,
        on_reload: Callable[[ServedModel, str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.expert = expert
        self.on_reload = on_reload
        self._models: dict[str, ServedModel] = {}
        self._default: str | None = None
        self._stages: dict[int, FaceStageLike] = {}
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()  # one reload pass at a time

    # -- building ------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        settings: Any,
        *,
        default: LivenessPipeline | InferenceEngine | None = None,
        expert: RgbExpert | None = None,
        on_reload: Callable[[ServedModel, str], None] | None = None,
    ) -> ModelRegistry:
        """Every model of ``settings`` (blocking). ``default``: an already loaded default
        model (its owner closes it); otherwise ``settings.model_path`` is loaded. The RGB
        expert is loaded from the settings unless a pipeline (which has one) is given."""
        if expert is None and not isinstance(default, LivenessPipeline):
            expert = load_rgb_expert(settings)
        registry = cls(settings, expert=expert, on_reload=on_reload)
        try:
            if isinstance(default, LivenessPipeline):
                registry.add_pipeline(default, default=True, owned=False)
            elif default is not None:
                registry.add_engine(default, default=True, owned=False)
            else:
                engine = InferenceEngine.load(settings.model_path, settings)
                registry.add_engine(engine, default=True)
            default_name = registry.default_name
            for name, path in parse_model_entries(str(getattr(settings, "models", ""))).items():
                if name == default_name:
                    raise ModelLoadError(
                        f"LIVENESS_MODELS: '{name}' is the default model's name "
                        "(LIVENESS_MODEL_PATH); give the extra model another name"
                    )
                engine = InferenceEngine.load(path, settings, name=name)
                try:
                    registry.add_engine(engine)
                except ServiceError as exc:  # e.g. lacks LIVENESS_OPERATING_POINT
                    engine.close()
                    raise ModelLoadError(f"model '{name}' ({path}): {exc.detail}") from None
        except BaseException:
            registry.close()
            raise
        return registry

    def face_stage(self, input_size: int) -> FaceStageLike:
        """The face stage for models of ``input_size`` (built once, shared)."""
        with self._lock:
            stage = self._stages.get(input_size)
            if stage is None:
                stage = build_face_stage(self.settings.face, input_size)
                self._stages[input_size] = stage
            return stage

    def _pipeline(self, engine: InferenceEngine) -> LivenessPipeline:
        stage = self.face_stage(engine.spec.input_size)
        return LivenessPipeline(engine, stage, self.settings, self.expert)

    def add_engine(
        self, engine: InferenceEngine, *, default: bool = False, owned: bool = True
    ) -> ServedModel:
        return self.add_pipeline(self._pipeline(engine), default=default, owned=owned)

    def add_pipeline(
        self, pipeline: LivenessPipeline, *, default: bool = False, owned: bool = True
    ) -> ServedModel:
        info = pipeline.engine.info
        path = Path(info.path)
        with self._lock:
            if info.name in self._models:
                raise ModelLoadError(f"two models are served as '{info.name}'")
            self._stages.setdefault(pipeline.engine.spec.input_size, pipeline.face_stage)
            served = ServedModel(
                info.name, path, pipeline, default, file_state=_file_state(path), owned=owned
            )
            self._models[info.name] = served
            if default:
                self._default = info.name
        return served

    # -- serving -------------------------------------------------------------------------
    @property
    def default_name(self) -> str:
        if self._default is None:
            raise LookupError("no default model")
        return self._default

    def names(self) -> list[str]:
        """Served names, the default first."""
        with self._lock:
            rest = sorted(n for n in self._models if n != self._default)
        return ([self._default] if self._default else []) + rest

    def models(self) -> list[ServedModel]:
        with self._lock:
            by_name = dict(self._models)
        return [by_name[n] for n in self.names()]

    def served(
        self, name: str | None = None, *, field: str = "model", status: int = 422
    ) -> ServedModel:
        """The served model ``name`` (None: the default); :class:`UnknownModelError` else."""
        with self._lock:
            key = self._default if name is None else name
            served = self._models.get(key) if key is not None else None
        if served is None:
            raise UnknownModelError(name or "", self.names(), field=field, status=status)
        return served

    def get(self, name: str | None = None, *, field: str = "model") -> LivenessPipeline:
        """The current pipeline of ``name`` (None: the default). Keep it for one whole
        analysis: a reload swaps the registry's reference, never the object."""
        return self.served(name, field=field).pipeline

    def engines(self) -> list[InferenceEngine]:
        return [m.engine for m in self.models()]

    def stages(self) -> list[FaceStageLike]:
        with self._lock:
            return list(self._stages.values())

    # -- hot reload ----------------------------------------------------------------------
    def check_reloads(self) -> dict[str, str]:
        """One pass over the served files: reload each changed one. Returns {name: outcome}
        for the files that were tried (blocking; run it off the event loop)."""
        outcomes: dict[str, str] = {}
        with self._reload_lock:
            for served in self.models():
                state = _file_state(served.path)
                if state == served.file_state:
                    continue
                outcome = self._reload(served, state)
                if outcome is not None:
                    outcomes[served.name] = outcome
        return outcomes

    def _reload(self, served: ServedModel, state: FileState | None) -> str | None:
        name = served.name
        if state is None:
            error = f"model file {served.path} is missing or unreadable"
        else:
            try:
                if file_sha256(served.path) == served.engine.info.sha256:
                    served.file_state = state  # touched or copied back: nothing new
                    if served.reload_error is not None:  # the served file is back
                        served.reload_error = None
                        served.reload_failed_at = None
                        self._notify(served, RELOAD_RESTORED)
                    return None
            except OSError:
                pass  # the load below says what is wrong
            try:
                engine = InferenceEngine.load(served.path, self.settings, name=name)
                try:
                    pipeline = self._pipeline(engine)
                    engine.warmup(runs=1)
                    stage = pipeline.face_stage
                    if stage is not served.pipeline.face_stage:
                        stage.warmup()  # a new input size: its own face stage
                except BaseException:
                    engine.close()
                    raise
            except Exception as exc:
                error = str(exc) or type(exc).__name__
            else:
                old = served.engine.info
                with self._lock:
                    served.pipeline = pipeline  # the swap: later requests get the new one
                    served.loaded_at = time.time()
                    served.file_state = state
                    served.reload_error = None
                    served.reload_failed_at = None
                    served.owned = True
                logger.info(
                    "model reloaded",
                    extra={
                        "model": name,
                        "old_version": old.version,
                        "old_sha256": old.sha256,
                        "version": engine.info.version,
                        "sha256": engine.info.sha256,
                    },
                )
                self._notify(served, RELOAD_SWAPPED)
                return RELOAD_SWAPPED
        # Remember the state tried, so the same broken file is not loaded every poll.
        served.file_state = state
        served.reload_error = error
        served.reload_failed_at = time.time()
        logger.error(
            "model reload rejected; the loaded model keeps serving",
            extra={"model": name, "path": str(served.path), "error": error},
        )
        self._notify(served, RELOAD_REJECTED)
        return RELOAD_REJECTED

    def _notify(self, served: ServedModel, outcome: str) -> None:
        if self.on_reload is not None:
            try:
                self.on_reload(served, outcome)
            except Exception:
                logger.exception("reload callback failed")

    def close(self) -> None:
        """Close the engines this registry loaded (not injected ones)."""
        for served in self.models():
            if served.owned:
                served.engine.close()
