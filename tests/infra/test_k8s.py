"""infra/k8s validates against the Kubernetes JSON schema (offline) and agrees with the CLI and settings.

The schemas ship inside the ``kubernetes-validate`` package; strict mode rejects unknown fields,
so a misspelt key (``livenesProbe``) fails here rather than being silently dropped by the API server.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import ValidationError, validate

from tests.infra.deploy_checks import (
    SECRET_SETTINGS,
    check_worker,
    dockerfile_entrypoint,
    dockerfile_env,
    missing_required,
    parse_cli,
    unknown_env_names,
)

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
#: Oldest Kubernetes still commonly run, and the newest the schema package knows.
K8S_VERSIONS = ("1.30", "1.37")
WORKLOAD_KINDS = ("Deployment", "Job", "StatefulSet", "DaemonSet", "CronJob")
SECRET_NAME = "orgmem-secrets"  # documented in docs/deploy.md; deliberately not in the repository


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


MANIFESTS = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return [doc for path in MANIFESTS for doc in load(path)]


def workloads(docs) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec.get("initContainers", []) + spec["containers"]


def by_name(docs, kind: str, name: str) -> dict:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def container_env(docs, container: dict) -> dict[str, dict | str]:
    """Effective environment: the image's ENV, ConfigMaps via envFrom, then ``env`` (value or ref)."""
    env: dict[str, dict | str] = dict(dockerfile_env())
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, f"{container['name']}: envFrom only from ConfigMaps (secrets by key reference)"
        env.update(by_name(docs, "ConfigMap", ref["name"])["data"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", item.get("valueFrom"))
    return env


def orgmem_argv(container: dict) -> list[str]:
    """The container runs the image's ``orgmem`` entrypoint with ``args``."""
    assert "command" not in container, f"{container['name']}: keep the image's orgmem entrypoint"
    assert dockerfile_entrypoint()[-1] == "orgmem"
    return container["args"]


# -- schema ------------------------------------------------------------------------------------

@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_kubernetes_schema(path, version):
    errors = []
    for doc in load(path):
        try:
            validate(doc, version, strict=True)
        except ValidationError as exc:  # its repr carries the whole schema: say only where and what
            where = ".".join(str(part) for part in exc.path)
            errors.append(f"{doc['kind']} {doc['metadata']['name']}: {where}: {exc.message}")
    assert not errors, f"{path.name} against Kubernetes {version}"


def test_validation_rejects_a_misspelt_field(docs):
    broken = copy.deepcopy(workloads(docs)[0])
    pod_spec(broken)["containers"][0]["livenesProbe"] = {"httpGet": {"path": "/healthz", "port": 8000}}
    with pytest.raises(ValidationError):
        validate(broken, K8S_VERSIONS[0], strict=True)


def test_kustomization_lists_every_manifest_and_image(docs):
    kustomization = load(K8S / "kustomization.yaml")[0]
    assert sorted(kustomization["resources"]) == sorted(p.name for p in MANIFESTS)
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert namespaces == {kustomization["namespace"]}, "every object in the orgmem namespace"
    images = {c["image"] for w in workloads(docs) for c in containers(w)}
    assert images == {i["name"] for i in kustomization["images"]}


# -- commands ----------------------------------------------------------------------------------

def test_containers_run_real_cli_commands(docs):
    paths = []
    for workload in workloads(docs):
        for container in containers(workload):
            path, params = parse_cli(orgmem_argv(container))
            paths.append(tuple(path))
            if path == ["worker"]:
                check_worker(params)
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                command = container.get(probe, {}).get("exec", {}).get("command", [])
                if command[:1] == ["orgmem"]:
                    parse_cli(command[1:])
    assert sorted(paths) == sorted([("serve",), ("worker",), ("worker",), ("scheduler",), ("db", "upgrade")])


def test_migration_is_a_job(docs):
    jobs = [w for w in workloads(docs) if w["kind"] == "Job"]
    assert [parse_cli(orgmem_argv(c))[0] for j in jobs for c in containers(j)] == [["db", "upgrade"]]
    assert pod_spec(jobs[0])["restartPolicy"] in ("OnFailure", "Never")


def test_api_probes_and_service(docs):
    (api,) = [w for w in workloads(docs) for c in containers(w) if c["args"][0] == "serve"]
    (container,) = containers(api)
    params = parse_cli(orgmem_argv(container))[1]
    assert params["host"] == "0.0.0.0"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert params["port"] in ports.values()
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container[probe]["httpGet"]["port"]
        assert ports.get(port, port) == params["port"], f"{probe} probes another port"
    labels = api["spec"]["template"]["metadata"]["labels"]
    services = [d for d in docs if d["kind"] == "Service"]
    (service,) = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
    for port in service["spec"]["ports"]:
        assert ports.get(port["targetPort"], port["targetPort"]) == params["port"]


def test_gpu_worker_lands_on_a_gpu_node(docs):
    gpu = [w for w in workloads(docs) for c in containers(w)
           if c["args"][0] == "worker" and "consolidate" in check_worker(parse_cli(c["args"])[1])]
    assert len(gpu) == 1
    (worker,) = gpu
    spec = pod_spec(worker)
    assert spec.get("nodeSelector"), "the GPU worker needs a node selector"
    (container,) = spec["containers"]
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert container_env(docs, container)["ORGMEM_DEVICE"] == "cuda"
    assert container["image"].endswith("gpu")
    assert worker["spec"]["strategy"]["type"] == "Recreate", "a rolling update would need a second GPU"
    for other in workloads(docs):
        if other is not worker:
            assert "nvidia.com/gpu" not in str(other), "only the GPU worker asks for a GPU"


def test_scheduler_is_a_singleton(docs):
    (scheduler,) = [w for w in workloads(docs) for c in containers(w) if c["args"] == ["scheduler"]]
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate", "two schedulers would fire twice"


# -- environment -------------------------------------------------------------------------------

def test_env_names_are_real_settings(docs):
    names = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            names |= set(doc["data"])
    for workload in workloads(docs):
        for container in containers(workload):
            names |= set(container_env(docs, container))
    assert "ORGMEM_STORE_URL" in names
    assert not unknown_env_names(names), "ORGMEM_* names that no setting reads"


def test_every_container_gets_the_required_settings(docs):
    for workload in workloads(docs):
        for container in containers(workload):
            env = container_env(docs, container)
            missing = missing_required(env)
            assert not missing, f"{workload['metadata']['name']}/{container['name']} lacks {missing}"


def test_secrets_come_by_reference_only(docs):
    assert not [d for d in docs if d["kind"] == "Secret"], "no Secret with values in the repository"
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            assert not SECRET_SETTINGS & set(doc["data"]), "credentials belong in the Secret"
    for workload in workloads(docs):
        for container in containers(workload):
            for item in container.get("env", []):
                if item["name"] in SECRET_SETTINGS:
                    ref = item.get("valueFrom", {}).get("secretKeyRef")
                    assert ref and ref["name"] == SECRET_NAME, f"{item['name']} must come from {SECRET_NAME}"


# -- volumes -----------------------------------------------------------------------------------

def test_every_claim_is_mounted(docs):
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    used = set()
    for workload in workloads(docs):
        spec = pod_spec(workload)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(workload):
            for mount in container.get("volumeMounts", []):
                assert mount["name"] in volumes, f"{container['name']} mounts undeclared {mount['name']}"
        used |= {v["persistentVolumeClaim"]["claimName"]
                 for v in volumes.values() if "persistentVolumeClaim" in v}
    assert used == claims, f"claims {sorted(claims)}, mounted {sorted(used)}"
    for workload in workloads(docs):
        if any("persistentVolumeClaim" in v for v in pod_spec(workload).get("volumes", [])):
            assert workload["spec"].get("replicas", 1) == 1
            assert workload["spec"]["strategy"]["type"] == "Recreate", "ReadWriteOnce: one pod at a time"
