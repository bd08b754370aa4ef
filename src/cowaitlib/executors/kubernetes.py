"""Tasks as Kubernetes Jobs, through the official `kubernetes` client.

One `batch/v1` Job per task, running the same task image and entry as Docker. The spec goes in
as an environment variable. The pod hands its result envelope back in its termination message
(under 4 KB), or, when larger, as a marked line at the end of its log; executed notebooks come
back the same way. So the caller needs no network path into the cluster: it only talks to the
API server.

Waiting costs few requests: every task of a namespace shares one watch on task pods (kept alive
across "410 Gone" by re-listing, with client-side timeouts so a dropped connection is noticed).
Per task: create the Job, follow its pod's log (that is the live output and, when needed, the
large result), delete the Job. Failures are read off the pod: image pull errors and container
config errors fail at once; OOM kills, deadlines and evictions are named; a pod unschedulable
for longer than a grace period, or a Job that gets no pod at all, fails with the cluster's words.

Cancellation deletes the Job (its pod goes with it); `ttlSecondsAfterFinished` removes Jobs
even if the caller died.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import gzip
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from ..config import KubernetesSettings, Settings
from ..errors import ExecutorUnavailable
from ..logs import TaskOutput
from ..spec import ResultEnvelope, TaskSpec
from ..worker import failure, run_in_this_process
from .containers import (
    ENTRY,
    ENVELOPE_MARK,
    MARK,
    NOTEBOOK_MARK,
    OUTPUT_DIR,
    PROJECT,
    SPEC_ENV,
    LogLines,
    container_spec,
)

TERMINATION_LOG = Path("/dev/termination-log")
TERMINATION_LIMIT = 3800  # the kubelet keeps at most 4096 bytes
ENVELOPE_IN_LOG = "cowaitlib:envelope-in-log"
LABEL = "cowaitlib.io/"
TASK_LABEL = LABEL + "task-id"
CONTAINER = "task"
PULL_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
LOG_TAIL_LINES = 40
#: The spec travels in one environment variable, which Linux caps at 128 KiB.
SPEC_LIMIT = 120 * 1024


class SpecTooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(
            f"the task's inputs take {size // 1024} KiB, more than the {SPEC_LIMIT // 1024} KiB "
            "a Kubernetes task can be given (they travel in an environment variable); pass a "
            "path or URL the task reads instead"
        )


# --- inside the pod ---------------------------------------------------------------------------


def pod_main() -> int:
    """A task pod's entry: spec from the environment, result to the termination message."""
    spec = TaskSpec.model_validate_json(os.environ[SPEC_ENV])
    envelope = run_in_this_process(spec)
    for path in sorted(Path(str(OUTPUT_DIR)).glob("*.ipynb")):
        packed = base64.b64encode(gzip.compress(path.read_bytes())).decode()
        print(f"{NOTEBOOK_MARK}{path.name}>>{packed}", flush=True)
    text = envelope.model_dump_json()
    if len(text.encode()) > TERMINATION_LIMIT:
        print(ENVELOPE_MARK + text, flush=True)
        text = ENVELOPE_IN_LOG
    TERMINATION_LOG.write_text(text)
    # A failed task fails its pod, so that a Job with backoff_limit > 0 tries again.
    return 1 if envelope.status == "error" else 0


# --- talking to the cluster -------------------------------------------------------------------


def sdk() -> Any:
    """The kubernetes client, or an error saying how to install it."""
    try:
        import kubernetes
    except ImportError:
        raise ExecutorUnavailable(
            "the kubernetes executor needs the kubernetes package: "
            "pip install 'cowaitlib[kubernetes]'"
        ) from None
    return kubernetes


class Cluster:
    """One API connection (a kubeconfig and context, or the pod's own service account)."""

    def __init__(self, settings: KubernetesSettings) -> None:
        k8s = sdk()
        configuration = k8s.client.Configuration()
        in_cluster = settings.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ
        try:
            if in_cluster:
                k8s.config.load_incluster_config(client_configuration=configuration)
                self.namespace = _pod_namespace()  # where Jobs go if no namespace is set
            else:
                k8s.config.load_kube_config(
                    config_file=settings.kubeconfig,
                    context=settings.context,
                    client_configuration=configuration,
                )
                self.namespace = _context_namespace(settings)
        except (k8s.config.ConfigException, OSError) as exc:
            where = settings.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise ExecutorUnavailable(
                f"no usable Kubernetes configuration in {where} ({exc}); set "
                "kubernetes.kubeconfig (or KUBECONFIG), or run inside a pod"
            ) from None
        configuration.connection_pool_maxsize = 64  # many tasks follow their logs at once
        self.host = configuration.host
        self.api = k8s.client.ApiClient(configuration)
        self.core = k8s.client.CoreV1Api(self.api)
        self.batch = k8s.client.BatchV1Api(self.api)
        self._watches: dict[str, PodWatch] = {}
        self._lock = threading.Lock()

    def watch(self, namespace: str) -> PodWatch:
        with self._lock:
            if namespace not in self._watches:
                self._watches[namespace] = PodWatch(self, namespace)
            return self._watches[namespace]

    def unreachable(self, exc: Exception) -> ExecutorUnavailable:
        return ExecutorUnavailable(
            f"cannot reach the Kubernetes API server at {self.host} ({_short(exc)}); is the "
            "cluster running, and is the kubeconfig right?"
        )


def _pod_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.is_file() else "default"


def _context_namespace(settings: KubernetesSettings) -> str:
    """The namespace of the kubeconfig context in use (as `kubectl` would use), or 'default'."""
    contexts, current = sdk().config.list_kube_config_contexts(settings.kubeconfig)
    name = settings.context or current["name"]
    context = next((c for c in contexts if c["name"] == name), current)
    return str(context.get("context", {}).get("namespace") or "default")


_clusters: dict[tuple[str | None, str | None], Cluster] = {}
_clusters_lock = threading.Lock()


def cluster_for(settings: KubernetesSettings) -> Cluster:
    key = (settings.kubeconfig, settings.context)
    with _clusters_lock:
        if key not in _clusters:
            _clusters[key] = Cluster(settings)
        return _clusters[key]


@dataclass
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Any]


class PodWatch:
    """One watch on a namespace's task pods, feeding each waiting task its pod's updates.

    Runs in a thread while anyone is subscribed. Keeps its resourceVersion between watch calls,
    re-lists on "410 Gone", and uses client-side timeouts so a silently dropped connection is
    noticed and the watch resumed.
    """

    SERVER_TIMEOUT = 30  # seconds the server keeps one watch call open
    READ_TIMEOUT = 45  # seconds without a byte before the client gives up on the connection

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self._subscribers: dict[str, _Subscriber] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.requests = 0  # list and watch calls made, for tests of the request budget

    def subscribe(self, key: str) -> asyncio.Queue[Any]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        with self._lock:
            self._subscribers[key] = _Subscriber(asyncio.get_running_loop(), queue)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"cowaitlib-watch-{self.namespace}", daemon=True
                )
                self._thread.start()
        return queue

    def unsubscribe(self, key: str) -> None:
        with self._lock:
            self._subscribers.pop(key, None)

    def _active(self) -> bool:
        with self._lock:
            if not self._subscribers:
                self._thread = None
                return False
            return True

    def _run(self) -> None:
        k8s = sdk()
        version: str | None = None
        failures = 0
        while self._active():
            try:
                if version is None:
                    self.requests += 1
                    listed = self.cluster.core.list_namespaced_pod(
                        self.namespace, label_selector=TASK_LABEL, _request_timeout=30
                    )
                    version = listed.metadata.resource_version
                    for pod in listed.items:
                        self._dispatch(pod)
                self.requests += 1
                stream = k8s.watch.Watch().stream(
                    self.cluster.core.list_namespaced_pod,
                    self.namespace,
                    label_selector=TASK_LABEL,
                    resource_version=version,
                    timeout_seconds=self.SERVER_TIMEOUT,
                    allow_watch_bookmarks=True,
                    _request_timeout=(10, self.READ_TIMEOUT),
                )
                for event in stream:
                    pod = event["object"]
                    version = pod.metadata.resource_version
                    if event["type"] != "BOOKMARK":
                        self._dispatch(pod, deleted=event["type"] == "DELETED")
                    if not self._active():
                        return
                failures = 0
            except k8s.client.ApiException as exc:
                if exc.status == 410:  # our resourceVersion is too old: list afresh
                    version = None
                    continue
                failures += 1
                self._trouble(exc, failures)
            except Exception as exc:  # a dropped or timed-out connection: resume the watch
                failures += 1
                self._trouble(exc, failures)

    def _trouble(self, exc: Exception, failures: int) -> None:
        if failures >= 5:  # the API server is gone: tell every waiting task
            for key in list(self._subscribers):
                self._send(key, self.cluster.unreachable(exc))
        time.sleep(min(2.0 * failures, 10.0))

    def _dispatch(self, pod: Any, deleted: bool = False) -> None:
        key = (pod.metadata.labels or {}).get(TASK_LABEL)
        if key is not None:
            self._send(key, ("deleted", pod) if deleted else pod)

    def _send(self, key: str, item: Any) -> None:
        with self._lock:
            subscriber = self._subscribers.get(key)
        if subscriber is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed meanwhile
                subscriber.loop.call_soon_threadsafe(subscriber.queue.put_nowait, item)


# --- one task as one Job ------------------------------------------------------------------------


class KubernetesExecutor:
    """Runs each task as a Job; see the module docstring."""

    #: The cluster enforces the task timeout itself (activeDeadlineSeconds), so the caller's own
    #: timer is only a backstop, a little later.
    enforces_timeout = True

    async def run(self, spec: TaskSpec, output: TaskOutput) -> ResultEnvelope:
        settings = Settings.model_validate(spec.settings)
        try:
            inner = container_spec(spec, settings, in_cluster=True)
        except ValueError as exc:
            return failure(spec, exc)
        cluster = await anyio.to_thread.run_sync(cluster_for, settings.kubernetes)
        return await JobRun(cluster, spec, inner, settings, output).execute()


def job_name(spec: TaskSpec) -> str:
    """A DNS-1123 label: lowercase, at most 63 characters, ending in the task id's suffix."""
    name = re.sub(r"[^a-z0-9-]+", "-", spec.id.lower()).strip("-")
    if len(name) > 63:
        name = name[: 63 - 9].rstrip("-") + "-" + name[-8:]
    return name


def label_value(text: str) -> str:
    """`text` as a valid label value (at most 63 characters of [A-Za-z0-9-_.])."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[-63:]
    return value.strip("-_.") or "none"


@dataclass
class JobRun:
    """One task's Job, from creation to deletion."""

    cluster: Cluster
    spec: TaskSpec
    inner: TaskSpec
    settings: Settings
    output: TaskOutput
    name: str = ""
    key: str = ""
    log_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=LOG_TAIL_LINES)
    )
    marks: list[str] = field(default_factory=list)
    log_complete: bool = False
    created: bool = False

    def __post_init__(self) -> None:
        self.name = job_name(self.spec)
        self.key = label_value(self.spec.id)
        self.config = self.settings.kubernetes
        self.namespace = self.config.namespace or self.cluster.namespace

    async def execute(self) -> ResultEnvelope:
        k8s = sdk()
        watch = self.cluster.watch(self.namespace)
        updates = watch.subscribe(self.key)  # before the Job exists: no update is missed
        try:
            try:
                await anyio.to_thread.run_sync(self.create)
            except SpecTooLarge as exc:
                return self.fail("SpecTooLarge", str(exc))
            except k8s.client.ApiException as exc:
                return self.refused(exc)
            except Exception as exc:
                raise self.cluster.unreachable(exc) from None
            return await self.follow(updates)
        finally:
            watch.unsubscribe(self.key)
            if self.created:  # set in the thread: a cancellation waiting on it still sees it
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self.delete)

    def create(self) -> None:
        self.cluster.batch.create_namespaced_job(
            self.namespace, self.manifest(), _request_timeout=30
        )
        self.created = True

    def manifest(self) -> dict[str, Any]:
        config, spec = self.config, self.spec
        image = config.image or self.settings.docker.image
        labels = {
            TASK_LABEL: self.key,
            LABEL + "task-name": label_value(spec.name),
            LABEL + "parent-id": label_value(spec.parent_id or "none"),
            LABEL + "run-id": label_value(spec.run_id),
        }
        annotations = {
            LABEL + "task": spec.id,
            LABEL + "parent": spec.parent_id or "",
            LABEL + "run": spec.run_id,
            LABEL + "target": spec.target,
        }
        resources: dict[str, dict[str, str]] = {"requests": {}, "limits": {}}
        for kind, request, limit in (
            ("cpu", config.cpu_request, config.cpu_limit),
            ("memory", config.memory_request, config.memory_limit),
        ):
            if request:
                resources["requests"][kind] = request
            if limit:
                resources["limits"][kind] = limit
        spec_json = self.inner.model_dump_json()
        if len(spec_json.encode()) > SPEC_LIMIT:
            raise SpecTooLarge(len(spec_json.encode()))
        env = [
            {"name": SPEC_ENV, "value": spec_json},
            {"name": "PYTHONUNBUFFERED", "value": "1"},
            *({"name": k, "value": v} for k, v in config.env.items()),
        ]
        container = {
            "name": CONTAINER,
            "image": image,
            "imagePullPolicy": config.image_pull_policy,
            "command": [*ENTRY, "--kubernetes"],
            "workingDir": PROJECT,
            "env": env,
            "envFrom": [{"secretRef": {"name": s}} for s in config.env_from_secrets],
            "resources": resources,
            "terminationMessagePolicy": "File",
        }
        pod_spec: dict[str, Any] = {
            "restartPolicy": "Never",
            "containers": [container],
            "imagePullSecrets": [{"name": s} for s in config.image_pull_secrets],
            "nodeSelector": dict(config.node_selector),
            "tolerations": list(config.tolerations),
        }
        if config.service_account:
            pod_spec["serviceAccountName"] = config.service_account
        job_spec: dict[str, Any] = {
            "backoffLimit": config.backoff_limit,
            "ttlSecondsAfterFinished": config.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        }
        if self.settings.timeout:
            # On the Job, not the pod: the Job controller then stops the pod by deleting it,
            # which the kubelet finishes cleanly (a pod's own deadline can leave it stuck).
            job_spec["activeDeadlineSeconds"] = math.ceil(self.settings.timeout)
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": self.name, "labels": labels, "annotations": annotations},
            "spec": job_spec,
        }

    async def follow(self, updates: asyncio.Queue[Any]) -> ResultEnvelope:
        """Read the pod's updates until it ends, or until it is clear it never will."""
        first_pod_by = time.monotonic() + self.config.start_grace
        unschedulable_since: float | None = None
        logs: asyncio.Task[None] | None = None
        pod: Any = None
        attempt = 1
        finished: set[str] = set()  # pods of earlier, failed attempts (backoff_limit > 0)
        try:
            while True:
                if pod is None:
                    wait = first_pod_by - time.monotonic()
                elif unschedulable_since is not None:
                    wait = unschedulable_since + self.config.unschedulable_grace - time.monotonic()
                else:
                    wait = math.inf
                update = None
                with anyio.move_on_after(max(wait, 0)):
                    update = await updates.get()
                if update is None:
                    if pod is None:
                        return await self.no_pod()
                    return self.fail("Unschedulable", _unschedulable(pod) or "unschedulable")
                if isinstance(update, Exception):
                    raise update
                if _pod_of(update).metadata.name in finished:
                    continue
                if isinstance(update, tuple) or pod_deleting(update):
                    return await self.pod_went_away()
                pod = update
                status = pod.status
                state = _container_state(pod)
                waiting = state.waiting if state else None
                if waiting is not None and waiting.reason in PULL_ERRORS:
                    image = self.config.image or self.settings.docker.image
                    return self.fail(
                        "ImagePullError",
                        f"image {image!r} cannot be used ({waiting.reason}: "
                        f"{waiting.message}); build and push it (cowaitlib.build_image(push="
                        "True)), or fix kubernetes.image",
                    )
                if waiting is not None and waiting.reason in CONFIG_ERRORS:
                    return self.fail("ContainerConfigError", f"{waiting.reason}: {waiting.message}")
                if status.reason == "Evicted":
                    return self.fail("Evicted", f"the task's pod was evicted: {status.message}")
                reason = _unschedulable(pod)
                if reason is None:
                    unschedulable_since = None
                elif unschedulable_since is None:
                    unschedulable_since = time.monotonic()
                started = state is not None and (state.running or state.terminated)
                if started and logs is None:
                    logs = asyncio.ensure_future(self.stream_logs(pod.metadata.name))
                if status.phase in ("Succeeded", "Failed") and state and state.terminated:
                    if logs is not None:
                        with anyio.move_on_after(10):  # the log's last lines and marks
                            await asyncio.shield(logs)
                    if not self.log_complete:
                        await anyio.to_thread.run_sync(self.read_marks_again, pod.metadata.name)
                    envelope = self.result(state.terminated)
                    if status.phase == "Failed" and attempt <= self.config.backoff_limit:
                        # The Job starts another pod (after its back-off): follow that one.
                        summary = envelope.error.message if envelope.error else "failed"
                        self.output.write(
                            "stderr",
                            f"attempt {attempt} of {self.config.backoff_limit + 1} "
                            f"failed ({summary.splitlines()[0]}); the Job tries again\n",
                        )
                        finished.add(pod.metadata.name)
                        first_pod_by = time.monotonic() + self.config.start_grace + 10 * 2**attempt
                        attempt += 1
                        pod, logs, self.marks, self.log_complete = None, None, [], False
                        self.log_tail.clear()
                        continue
                    return envelope
        finally:
            if logs is not None and not logs.done():
                logs.cancel()

    async def stream_logs(self, pod_name: str) -> None:
        await anyio.to_thread.run_sync(
            self._stream_logs, pod_name, abandon_on_cancel=True, limiter=_log_threads()
        )

    def _stream_logs(self, pod_name: str) -> None:
        # A task may print nothing for hours; a dropped stream only costs live output, as
        # `result()` reads the log again if the marks it needs are missing.
        response = self.cluster.core.read_namespaced_pod_log(
            pod_name,
            self.namespace,
            container=CONTAINER,
            follow=True,
            _preload_content=False,
            _request_timeout=(10, 24 * 3600),
        )
        lines = LogLines()
        try:
            for chunk in response.stream(65536):
                for line in lines.feed(chunk):
                    self._log_line(line)
            for line in lines.close():
                self._log_line(line)
        finally:
            response.release_conn()
        self.log_complete = True

    def read_marks_again(self, pod_name: str) -> None:
        """The whole log once more, for its marks (when following it was cut short)."""
        text = self.cluster.core.read_namespaced_pod_log(
            pod_name, self.namespace, container=CONTAINER, _request_timeout=60
        )
        lines = LogLines()
        self.marks = [
            line for line in [*lines.feed(text.encode()), *lines.close()] if line.startswith(MARK)
        ]

    def _log_line(self, line: str) -> None:
        if line.startswith(MARK):
            self.marks.append(line)
            return
        self.log_tail.append(line)
        self.output.write("stdout", line + "\n")

    def result(self, terminated: Any) -> ResultEnvelope:
        saved = self.save_notebooks()
        tail = "\n".join(self.log_tail)
        if terminated.reason == "OOMKilled":
            limit = self.config.memory_limit or "the node's"
            return self.fail(
                "OutOfMemory", f"the task's pod ran out of memory (limit {limit}) and was killed"
            )
        message = (terminated.message or "").strip()
        if message == ENVELOPE_IN_LOG:
            message = next(
                (
                    m[len(ENVELOPE_MARK) :]
                    for m in reversed(self.marks)
                    if m.startswith(ENVELOPE_MARK)
                ),
                "",
            )
        try:
            envelope = ResultEnvelope.model_validate_json(message)
        except ValueError:
            return failure(
                self.spec,
                RuntimeError(),
                type="ContainerExited",
                traceback=tail,
                message=f"the task's container exited with code {terminated.exit_code} "
                f"({terminated.reason}) without a result; its last output is below",
            )
        if envelope.output_notebook is not None:
            name = Path(envelope.output_notebook).name
            envelope = envelope.model_copy(update={"output_notebook": saved.get(name)})
        return envelope

    def save_notebooks(self) -> dict[str, str]:
        """Executed notebooks the pod printed at its end, into the caller's output folder."""
        saved = {}
        target = Path(self.settings.output_dir)
        for mark in self.marks:
            if not mark.startswith(NOTEBOOK_MARK):
                continue
            name, _, packed = mark[len(NOTEBOOK_MARK) :].partition(">>")
            target.mkdir(parents=True, exist_ok=True)
            (target / name).write_bytes(gzip.decompress(base64.b64decode(packed)))
            saved[name] = str(target / name)
        return saved

    def fail(self, error_type: str, message: str, **fields: Any) -> ResultEnvelope:
        self.save_notebooks()
        return failure(
            self.spec,
            RuntimeError(message),
            type=error_type,
            message=message,
            traceback="\n".join(self.log_tail),
            **fields,
        )

    def refused(self, exc: Any) -> ResultEnvelope:
        hint = ""
        if exc.status == 403:
            hint = (
                "; the account lacks permissions: apply cowaitlib.kubernetes_rbac(...) and "
                "set kubernetes.service_account"
            )
        return self.fail("JobRefused", f"the API server refused the Job: {_short(exc)}{hint}")

    async def pod_went_away(self) -> ResultEnvelope:
        """The pod is being deleted before it finished: the Job's own status says why. The Job
        controller deletes the pod first and records why just after (`FailureTarget`, then
        `Failed` once the pod is gone), so the Job is asked a few times."""
        for _ in range(20):
            job = await anyio.to_thread.run_sync(
                lambda: self.cluster.batch.read_namespaced_job(
                    self.name, self.namespace, _request_timeout=30
                )
            )
            for condition in job.status.conditions or []:
                if condition.type not in ("Failed", "FailureTarget"):
                    continue
                if condition.reason == "DeadlineExceeded":
                    return self.fail(
                        "DeadlineExceeded",
                        f"did not finish within its timeout of "
                        f"{self.settings.timeout:g} s (the Job's deadline) and was stopped",
                        kind="timeout",
                    )
                return self.fail("JobFailed", f"{condition.reason}: {condition.message}")
            await anyio.sleep(0.5)
        return self.fail("PodDeleted", "the task's pod was deleted before it finished")

    async def no_pod(self) -> ResultEnvelope:
        """The Job got no pod in time: say what the cluster says about it."""
        events = await anyio.to_thread.run_sync(self.job_events)
        detail = "; ".join(events) or "no events"
        return self.fail(
            "NoPod",
            f"Job {self.name} got no pod within {self.config.start_grace:g} s: {detail}",
        )

    def job_events(self) -> list[str]:
        try:
            listed = self.cluster.core.list_namespaced_event(
                self.namespace,
                field_selector=f"involvedObject.name={self.name}",
                _request_timeout=30,
            )
        except Exception as exc:
            return [f"(events unavailable: {_short(exc)})"]
        return [f"{e.reason}: {e.message}" for e in listed.items if e.type == "Warning"]

    def delete(self) -> None:
        """Delete the Job and, with it, its pod (the cluster's garbage collector follows)."""
        k8s = sdk()
        with contextlib.suppress(k8s.client.ApiException):
            self.cluster.batch.delete_namespaced_job(
                self.name, self.namespace, propagation_policy="Background", _request_timeout=30
            )


def _pod_of(update: Any) -> Any:
    return update[1] if isinstance(update, tuple) else update


def pod_deleting(pod: Any) -> bool:
    return pod.metadata.deletion_timestamp is not None


def _container_state(pod: Any) -> Any:
    for status in pod.status.container_statuses or []:
        if status.name == CONTAINER:
            return status.state
    return None


def _unschedulable(pod: Any) -> str | None:
    for condition in pod.status.conditions or []:
        if (condition.type, condition.status, condition.reason) == (
            "PodScheduled",
            "False",
            "Unschedulable",
        ):
            return f"the task's pod cannot be scheduled: {condition.message}"
    return None


_log_limiter: anyio.CapacityLimiter | None = None


def _log_threads() -> anyio.CapacityLimiter:
    """Each running task follows its log in a thread; none may wait for another's to end."""
    global _log_limiter
    if _log_limiter is None:
        _log_limiter = anyio.CapacityLimiter(math.inf)
    return _log_limiter


def _short(exc: Any) -> str:
    text = getattr(exc, "reason", None) or str(exc)
    body = getattr(exc, "body", None)
    if body:
        import json

        with contextlib.suppress(ValueError, TypeError):
            text = json.loads(body).get("message", text)
    return str(text).strip().splitlines()[0][:400] if str(text).strip() else type(exc).__name__


# --- permissions ------------------------------------------------------------------------------


def kubernetes_rbac(
    namespace: str = "default", service_account: str = "cowaitlib"
) -> list[dict[str, Any]]:
    """The least-privilege ServiceAccount, Role and RoleBinding that let tasks running in the
    cluster start their own child tasks (as Jobs in the same namespace). Apply them (for
    example `kubectl apply -f` a JSON dump of this list) and set
    `kubernetes.service_account` to `service_account`."""
    name = f"{service_account}-tasks"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service_account, "namespace": namespace},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["batch"],
                    "resources": ["jobs"],
                    "verbs": ["create", "get", "list", "watch", "delete"],
                },
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "subjects": [
                {"kind": "ServiceAccount", "name": service_account, "namespace": namespace}
            ],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        },
    ]
