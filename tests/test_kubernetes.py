"""The Kubernetes executor against a real API server with a real kubelet (see infra/)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest

import cowaitlib as cw
from cowaitlib.executors import kubernetes as kube_executor
from tests import tasks_for_tests as t
from tests.conftest import (
    KUBE_LABEL,
    KUBE_NAMESPACE,
    KUBECONFIG,
    NOTEBOOKS,
    REGISTRY,
    ROOT,
    interrupt_script_mid_task,
)

pytestmark = [pytest.mark.anyio, pytest.mark.kubernetes]
EXAMPLE = ROOT / "examples" / "volume"
SERVICE_ACCOUNT = "cowaitlib-runner"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def in_kube(task_image: str, kube: Any) -> Any:
    cw.configure(
        executor="kubernetes",
        docker={"image": task_image, "project_dir": str(ROOT)},
        kubernetes={"kubeconfig": KUBECONFIG, "namespace": KUBE_NAMESPACE},
    )
    return kube


@pytest.fixture(scope="session")
def rbac_applied(kube: Any) -> str:
    """The least-privilege manifests from cw.kubernetes_rbac, applied for real."""
    import kubernetes

    for manifest in cw.kubernetes_rbac(namespace=KUBE_NAMESPACE, service_account=SERVICE_ACCOUNT):
        try:
            kubernetes.utils.create_from_dict(kube.api, manifest, namespace=KUBE_NAMESPACE)
        except kubernetes.utils.FailToCreateError as exc:
            if not all(e.status == 409 for e in exc.api_exceptions):
                raise
    return SERVICE_ACCOUNT


def task_pods(kube: Any, task: cw.TaskHandle[Any] | str) -> list[Any]:
    key = kube_executor.label_value(task if isinstance(task, str) else task.id)
    return kube.core.list_namespaced_pod(KUBE_NAMESPACE, label_selector=f"{KUBE_LABEL}={key}").items


def task_jobs(kube: Any, task: cw.TaskHandle[Any] | str) -> list[Any]:
    key = kube_executor.label_value(task if isinstance(task, str) else task.id)
    return kube.batch.list_namespaced_job(
        KUBE_NAMESPACE, label_selector=f"{KUBE_LABEL}={key}"
    ).items


async def gone(kube: Any, handle: cw.TaskHandle[Any] | str, within: float = 90) -> bool:
    with anyio.move_on_after(within):
        while task_jobs(kube, handle) or task_pods(kube, handle):
            await anyio.sleep(1)
        return True
    return False


# --- running tasks ------------------------------------------------------------------------


async def test_function_task_runs_as_a_job(
    in_kube: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await t.add(a=2, b=40) == 42
    handle = t.prints(lines=2)
    assert await handle == 2
    assert f"[{handle.id}] line 1" in capsys.readouterr().out
    assert await gone(in_kube, handle)  # the Job and its pod are deleted once read


async def test_large_result_comes_back_through_the_log(in_kube: Any) -> None:
    frame = await t.returns_frame(rows=3000)  # far over the 4 KB termination message
    assert len(frame) == 3000 and frame["half"].iloc[-1] == 1499.5


async def test_notebook_task_runs_as_a_job(in_kube: Any, fresh_settings: Path) -> None:
    runner = cw.NotebookRunner(NOTEBOOKS / "add.ipynb", a=20)
    assert await runner == 22
    assert runner.output_notebook == str(fresh_settings / f"{runner.id}.ipynb")
    assert "adding 20 and 2" in Path(runner.output_notebook).read_text()


async def test_job_manifest_follows_the_settings(in_kube: Any) -> None:
    handle = t.sleeper.options(
        timeout=120,
        kubernetes={
            "memory_limit": "256Mi",
            "cpu_request": "50m",
            "env": {"COLOUR": "blue"},
            "ttl_seconds_after_finished": 77,
        },
    )(key="manifest", seconds=30)
    with anyio.fail_after(60):
        while not task_jobs(in_kube, handle):
            await anyio.sleep(0.2)
    [job] = task_jobs(in_kube, handle)
    assert job.metadata.name == kube_executor.job_name(handle.spec)
    assert len(job.metadata.name) <= 63 and job.metadata.name.startswith("sleeper-")
    assert job.metadata.labels["cowaitlib.io/run-id"] == handle.spec.run_id
    assert job.spec.backoff_limit == 0 and job.spec.ttl_seconds_after_finished == 77
    assert job.spec.active_deadline_seconds == 120
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    [container] = pod.containers
    assert container.resources.limits == {"memory": "256Mi"}
    assert container.resources.requests == {"cpu": "50m"}
    assert ("COLOUR", "blue") in [(e.name, e.value) for e in container.env]
    await handle.cancel()
    assert await gone(in_kube, handle)


async def test_twenty_jobs_at_once(in_kube: Any) -> None:
    results = await cw.join([t.add(a=i, b=i) for i in range(20)])
    assert results == [2 * i for i in range(20)]


async def test_few_api_requests_per_task(in_kube: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import kubernetes

    calls: list[str] = []
    original = kubernetes.client.ApiClient.call_api

    def counting(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(f"{method} {url}")
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(kubernetes.client.ApiClient, "call_api", counting)
    tasks = 10
    assert await cw.join([t.add(a=i) for i in range(tasks)]) == [i + 1 for i in range(tasks)]
    per_task = len(calls) / tasks
    assert per_task <= 5, f"{per_task} requests per task: {calls}"


# --- nested tasks under least-privilege RBAC -----------------------------------------------


async def test_batch_notebook_runs_its_days_as_jobs_under_rbac(
    in_kube: Any, rbac_applied: str, fresh_settings: Path
) -> None:
    from trades import expected_volume

    cw.configure(kubernetes={"service_account": rbac_applied})
    runner = cw.NotebookRunner(EXAMPLE / "notebook_batch.ipynb", start_day=5, end_day=7)
    volumes = await runner
    assert volumes == {d: expected_volume(d) for d in ["20200105", "20200106", "20200107"]}
    saved = sorted(p.name for p in fresh_settings.glob("*.ipynb"))
    assert f"{runner.id}.ipynb" in saved
    assert len([s for s in saved if s.startswith("volume-")]) == 3  # children's, passed up


async def test_child_failure_in_the_cluster_fails_the_parent(
    in_kube: Any, rbac_applied: str
) -> None:
    cw.configure(kubernetes={"service_account": rbac_applied})
    with pytest.raises(cw.TaskError) as caught:
        await cw.NotebookRunner(NOTEBOOKS / "parent_of_failing.ipynb")
    assert "task 'fails'" in caught.value.message
    assert "ValueError: bad value 1" in caught.value.traceback


def test_rbac_manifests_are_least_privilege() -> None:
    account, role, binding = cw.kubernetes_rbac(namespace="team", service_account="runner")
    assert account["kind"] == "ServiceAccount" and account["metadata"]["namespace"] == "team"
    rules = {(r["apiGroups"][0], r["resources"][0]): set(r["verbs"]) for r in role["rules"]}
    assert rules == {
        ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
        ("", "pods"): {"get", "list", "watch"},
        ("", "pods/log"): {"get"},
        ("", "events"): {"list"},
    }
    assert binding["subjects"][0]["name"] == "runner"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }


# --- the production flow: build, push, run pulling from the registry ------------------------


def test_image_pushed_to_the_registry_runs_on_the_cluster(
    task_image: str, kube: Any, docker_client: Any, registry: str
) -> None:
    name = f"{registry}/cowaitlib-test:k8s-{uuid.uuid4().hex[:8]}"
    docker_client.images.get(task_image).tag(name)
    cw.push_image(name, output=lambda line: None)
    docker_client.images.remove(name)  # the node must pull it
    try:
        cw.configure(
            executor="kubernetes",
            docker={"project_dir": str(ROOT)},
            kubernetes={
                "kubeconfig": KUBECONFIG,
                "namespace": KUBE_NAMESPACE,
                "image": name,
                "image_pull_policy": "Always",
            },
        )
        assert cw.run(t.add(a=1, b=1)) == 2
        assert docker_client.images.get(name)  # pulled by the kubelet
    finally:
        docker_client.images.remove(name, force=True)


# --- failures -----------------------------------------------------------------------------


async def test_out_of_memory_is_named(in_kube: Any) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.allocates.options(kubernetes={"memory_limit": "64Mi"})(megabytes=256)
    assert caught.value.error_type == "OutOfMemory"
    assert "ran out of memory (limit 64Mi)" in caught.value.message


async def test_bad_image_names_fail_fast(in_kube: Any) -> None:
    started = time.monotonic()
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(kubernetes={"image": "Not A Valid::Name"})(a=1)
    assert (
        caught.value.error_type == "ImagePullError" and "InvalidImageName" in caught.value.message
    )
    missing = f"{REGISTRY}/cowaitlib/never-pushed:nope"
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(kubernetes={"image": missing, "image_pull_policy": "Always"})(a=1)
    assert caught.value.error_type == "ImagePullError"
    assert f"image '{missing}' cannot be used" in caught.value.message
    assert time.monotonic() - started < 90


async def test_deadline_is_enforced_by_the_cluster(in_kube: Any) -> None:
    handle = t.sleeper.options(timeout=6)(key="deadline", seconds=120)
    with pytest.raises(cw.TaskTimeoutError, match=r"timeout of 6 s \(the Job's deadline\)"):
        await handle
    assert await gone(in_kube, handle)


async def test_cancellation_deletes_the_job_and_its_pod(in_kube: Any) -> None:
    handle = t.sleeper(key="doomed", seconds=120)
    with anyio.fail_after(90):
        while not any(p.status.phase == "Running" for p in task_pods(in_kube, handle)):
            await anyio.sleep(0.5)
    with anyio.move_on_after(0.5):
        await handle
    assert await gone(in_kube, handle)


async def test_ctrl_c_deletes_the_job(task_image: str, kube: Any, tmp_path: Path) -> None:
    settings = {
        "executor": "kubernetes",
        "docker": {"image": task_image, "project_dir": str(ROOT)},
        "kubernetes": {"kubeconfig": KUBECONFIG, "namespace": KUBE_NAMESPACE},
    }

    def running(task_id: str) -> bool:
        return any(p.status.phase == "Running" for p in task_pods(kube, task_id))

    task_id, ended = interrupt_script_mid_task(settings, running, tmp_path)
    assert ended.returncode != 0 and "KeyboardInterrupt" in ended.stderr, ended.stderr
    assert task_jobs(kube, task_id) == []  # deleted before the script ended
    assert await gone(kube, task_id)  # and its pod follows


async def test_a_pod_deleted_by_someone_else_fails_the_task(in_kube: Any) -> None:
    handle = t.sleeper(key="deleted", seconds=120)
    with anyio.fail_after(90):
        while not any(p.status.phase == "Running" for p in task_pods(in_kube, handle)):
            await anyio.sleep(0.5)
    for pod in task_pods(in_kube, handle):
        in_kube.core.delete_namespaced_pod(pod.metadata.name, KUBE_NAMESPACE)
    with anyio.fail_after(60), pytest.raises(cw.TaskError) as caught:
        await handle
    # The Job's own reason if it records one within 10 s of the pod going away, else PodDeleted.
    assert caught.value.error_type in ("JobFailed", "PodDeleted")
    assert await gone(in_kube, handle)


async def test_unschedulable_pod_fails_after_the_grace(in_kube: Any) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(
            kubernetes={"node_selector": {"cowaitlib.io/nowhere": "true"}, "unschedulable_grace": 3}
        )(a=1)
    assert caught.value.error_type == "Unschedulable"
    assert "cannot be scheduled" in caught.value.message


async def test_container_config_error_fails_fast(in_kube: Any) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(kubernetes={"env_from_secrets": ["cowaitlib-no-such-secret"]})(a=1)
    assert caught.value.error_type == "ContainerConfigError"
    assert "cowaitlib-no-such-secret" in caught.value.message


async def test_a_job_that_gets_no_pod_says_why(in_kube: Any) -> None:
    with pytest.raises(cw.TaskError) as caught:
        await t.add.options(
            kubernetes={"service_account": "cowaitlib-no-such-account", "start_grace": 8}
        )(a=1)
    assert caught.value.error_type == "NoPod"
    assert "cowaitlib-no-such-account" in caught.value.message


def test_unreachable_api_server_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"
        "clusters: [{name: nowhere, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: nobody, user: {token: x}}]\n"
        "contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]\n"
    )
    cw.configure(executor="kubernetes", kubernetes={"kubeconfig": str(config)})
    with pytest.raises(
        cw.ExecutorUnavailable,
        match=r"cannot reach the Kubernetes API server at https://127.0.0.1:1",
    ):
        cw.run(t.add(a=1))


def test_namespace_defaults_to_the_kubeconfig_context(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: plain\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: x}}]\n"
        "contexts: [{name: plain, context: {cluster: c, user: u}},\n"
        "           {name: team, context: {cluster: c, user: u, namespace: team-a}}]\n"
    )
    settings = cw.Settings.model_validate({"kubernetes": {"kubeconfig": str(config)}}).kubernetes
    assert kube_executor.Cluster(settings).namespace == "default"
    team = settings.model_copy(update={"context": "team"})
    assert kube_executor.Cluster(team).namespace == "team-a"


async def test_jobs_go_to_the_context_namespace_when_none_is_set(
    task_image: str, kube: Any, tmp_path: Path
) -> None:
    import yaml

    document = yaml.safe_load(Path(KUBECONFIG).read_text())
    for context in document["contexts"]:
        context["context"]["namespace"] = KUBE_NAMESPACE
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(document))
    cw.configure(
        executor="kubernetes",
        docker={"image": task_image, "project_dir": str(ROOT)},
        kubernetes={"kubeconfig": str(config)},
    )
    assert await t.pod_namespace() == KUBE_NAMESPACE


def test_missing_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(cw.ExecutorUnavailable, match=r"pip install 'cowaitlib\[kubernetes\]'"):
        kube_executor.sdk()


def test_dataframe_dtypes_survive_a_pod(in_kube: Any) -> None:
    frame = cw.run(t.returns_frame(rows=3))
    pd.testing.assert_frame_equal(frame, pd.DataFrame({"n": range(3), "half": [0, 0.5, 1.0]}))


async def test_backoff_limit_retries_a_failed_task(
    in_kube: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    handle = t.fails.options(kubernetes={"backoff_limit": 1})(message="twice")
    with pytest.raises(cw.TaskError, match="ValueError: twice"):
        await handle
    assert f"[{handle.id}] attempt 1 of 2 failed (twice); the Job tries again" in (
        capsys.readouterr().err
    )
    assert await gone(in_kube, handle)


async def test_inputs_too_large_for_a_pod_are_refused_clearly(in_kube: Any) -> None:
    with pytest.raises(cw.TaskError, match=r"takes? .*KiB.*pass a path or URL") as caught:
        await t.takes_anything(blob="x" * 200_000)
    assert caught.value.error_type == "SpecTooLarge"
