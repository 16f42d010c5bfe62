"""infra/compose.yaml and infra/orgmem.env.example agree with the CLI, the settings and the Dockerfile.

No Docker engine: the file is parsed with PyYAML, every orgmem command is parsed by the real
click tree, every ``ORGMEM_*`` name is looked up in the settings classes.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.infra.deploy_checks import (
    CORE_SETTINGS_CLASSES,
    DOCKERFILE,
    INFRA,
    REPO,
    CliMismatch,
    celery_ping_target,
    check_worker,
    declared_settings_classes,
    dockerfile_args,
    dockerfile_entrypoint,
    dockerfile_env,
    dockerfile_instructions,
    missing_required,
    parse_cli,
    settings_classes,
    unknown_env_names,
    worker_node_name,
)

COMPOSE = INFRA / "compose.yaml"
ENV_EXAMPLE = INFRA / "orgmem.env.example"


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            env[key.strip()] = value.strip()
    return env


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def unescape(text: str) -> str:
    """Compose turns ``$$`` into ``$`` before the container sees it."""
    return text.replace("$$", "$")


def is_ours(service: dict) -> bool:
    """Built from infra/docker/Dockerfile, i.e. runs ``orgmem <command>``."""
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "infra/docker/Dockerfile"


def env_files(service: dict) -> list[Path]:
    """The example of each env file (the real one, with secrets, is copied from it and not committed)."""
    out = []
    for item in service.get("env_file", []):
        name = item["path"] if isinstance(item, dict) else item
        real = COMPOSE.parent / name
        out.append(real if real.name.endswith(".example") else real.with_name(real.name + ".example"))
    return out


def effective_env(service: dict) -> dict[str, str]:
    """What the container sees: the image's ENV, then env files, then ``environment``."""
    env = dict(dockerfile_env()) if is_ours(service) else {}
    for path in env_files(service):
        env.update(read_env_file(path))
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({k: str(v) for k, v in environment.items()})
    return env


def is_one_shot(service: dict) -> bool:
    return service.get("restart") == "no"


def commands(services) -> dict[str, tuple[list[str], dict]]:
    return {name: parse_cli(s["command"]) for name, s in services.items() if is_ours(s)}


# -- structure ---------------------------------------------------------------------------------

def test_every_piece_is_there(services):
    paths = {name: tuple(path) for name, (path, _) in commands(services).items()}
    roles = sorted(paths.values())
    assert roles.count(("worker",)) == 2, paths
    for role in (("serve",), ("scheduler",), ("db", "upgrade")):
        assert roles.count(role) == 1, f"expected one service running `orgmem {' '.join(role)}`: {paths}"
    images = " ".join(str(s.get("image", "")) for s in services.values())
    for server in ("postgres", "redis", "minio"):
        assert server in images, f"no {server} service"


def test_orgmem_services_run_real_cli_commands(services):
    assert dockerfile_entrypoint()[-1] == "orgmem", "compose commands are orgmem sub-commands"
    ours = [name for name, s in services.items() if is_ours(s)]
    assert len(ours) >= 5
    for name in ours:
        command = services[name]["command"]
        assert isinstance(command, list), f"{name}: use the exec form (a list) for `command`"
        path, params = parse_cli(command)  # raises CliMismatch naming the bad part
        if path == ["serve"]:
            assert params["host"] == "0.0.0.0", f"{name}: the server must listen beyond the container"


def test_cli_check_refuses_what_the_cli_refuses():
    """The check is not vacuous: unknown commands, options and bad values are caught."""
    for argv in (["serv"], ["db"], ["worker", "--queue", "ingest"], ["serve", "--port", "eighty"]):
        with pytest.raises(CliMismatch):
            parse_cli(argv)


def test_workers_cover_both_queues_cpu_and_gpu(services):
    queues = {}
    for name, (path, params) in commands(services).items():
        if path == ["worker"]:
            queues[name] = check_worker(params)
    assert sorted(q for qs in queues.values() for q in qs) == ["consolidate", "ingest"], queues
    (gpu,) = [name for name, qs in queues.items() if "consolidate" in qs]
    (cpu,) = [name for name, qs in queues.items() if "ingest" in qs]
    assert effective_env(services[gpu]).get("ORGMEM_DEVICE", "").startswith("cuda")
    assert effective_env(services[cpu]).get("ORGMEM_DEVICE") == "cpu"


def test_gpu_worker_reserves_an_nvidia_device_and_gets_cuda_torch(services):
    gpu = [s for s in services.values() if is_ours(s) and "consolidate" in " ".join(s["command"])]
    assert len(gpu) == 1
    service = gpu[0]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    build_args = service["build"].get("args", {})
    assert set(build_args) <= set(dockerfile_args()), "build args the Dockerfile does not declare"
    assert "/cu" in build_args.get("TORCH_INDEX_URL", ""), "the GPU image needs a CUDA build of torch"
    assert service["image"] != services["api"]["image"], "CPU and GPU images need distinct tags"
    for other in services.values():
        if other is not service:
            assert "deploy" not in other or "devices" not in str(other["deploy"]), "only the GPU worker"


def test_depends_on_orders_startup(services):
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health; it has none"
            elif condition == "service_completed_successfully":
                assert is_one_shot(services[target]), f"{target} must be a one-shot (restart: 'no')"
            else:
                pytest.fail(f"{name} -> {target}: use a condition, not bare start order ({condition})")
    (migrate,) = [n for n, (path, _) in commands(services).items() if path == ["db", "upgrade"]]
    assert is_one_shot(services[migrate])
    assert services[migrate]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name, service in services.items():
        if is_ours(service) and name != migrate:
            assert service["depends_on"][migrate]["condition"] == "service_completed_successfully", (
                f"{name} would start on an unmigrated database")


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if is_one_shot(service):
            continue
        if is_ours(service) and "consolidate" in service["command"]:
            # solo pool: cannot answer a ping while training (see the comment in compose.yaml)
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        test = check["test"]
        assert test[0] in ("CMD", "CMD-SHELL"), f"{name}: healthcheck test must be CMD or CMD-SHELL"
        if test[0] == "CMD" and test[1] == "orgmem":
            parse_cli(test[2:])


def test_worker_ping_names_the_node_the_worker_registers(services):
    for name, service in services.items():
        test = service.get("healthcheck", {}).get("test", [])
        if test[:1] == ["CMD-SHELL"] and "celery" in test[1]:
            app_module, node = celery_ping_target(unescape(test[1]))
            assert (REPO / Path(*app_module.split("."))).with_suffix(".py").exists(), app_module
            queues = check_worker(parse_cli(service["command"])[1])
            assert node == worker_node_name(queues), f"{name}: pings {node}, the worker is another node"


def test_api_healthcheck_probes_readyz_on_the_served_port(services):
    api = [s for s in services.values() if is_ours(s) and s["command"][0] == "serve"][0]
    params = parse_cli(api["command"])[1]
    assert f"127.0.0.1:{params['port']}/readyz" in " ".join(api["healthcheck"]["test"])
    assert any(str(p).endswith(f":{params['port']}") for p in api["ports"])


# -- environment -------------------------------------------------------------------------------

def test_settings_classes_are_discovered():
    found = declared_settings_classes()
    assert set(CORE_SETTINGS_CLASSES) <= found, found
    assert len(settings_classes()) == len(found)


def test_env_names_are_real_settings(services):
    names = set(read_env_file(ENV_EXAMPLE)) | set(dockerfile_env())
    for service in services.values():
        names |= set(effective_env(service))
    assert not unknown_env_names(names), "ORGMEM_* names that no setting reads"
    assert "ORGMEM_DATABASE_URL" in names  # the check saw the env example


def test_unknown_env_name_is_caught():
    assert unknown_env_names(["ORGMEM_DATABASE_URL", "ORGMEM_DATABSE_URL", "PATH"]) == ["ORGMEM_DATABSE_URL"]


def test_every_orgmem_service_gets_the_required_settings(services):
    for name, service in services.items():
        if is_ours(service):
            env = effective_env(service)
            assert not missing_required(env), f"{name} lacks {missing_required(env)}"
            assert env["ORGMEM_STORE_URL"].startswith("s3://")


def test_missing_required_names_what_is_missing():
    env = {"ORGMEM_DATABASE_URL": "postgresql+psycopg://x", "ORGMEM_STORE_URL": "s3://b/p"}
    missing = missing_required(env)
    assert "ORGMEM_BROKER_URL" in missing and "ORGMEM_S3_SECRET_ACCESS_KEY" in missing


def test_env_files_exist_and_secrets_stay_out_of_git(services):
    for service in services.values():
        for example in env_files(service):
            assert example.exists(), f"{example} missing"
    assert "orgmem.env" in (INFRA / ".gitignore").read_text().split()


def test_urls_point_at_the_compose_services(services):
    env = read_env_file(ENV_EXAMPLE)
    db = urlsplit(env["ORGMEM_DATABASE_URL"])
    assert db.scheme == "postgresql+psycopg"
    assert (db.username, db.password, db.path.lstrip("/")) == (
        env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]), "database URL vs POSTGRES_*"
    for variable in ("ORGMEM_DATABASE_URL", "ORGMEM_BROKER_URL", "ORGMEM_S3_ENDPOINT_URL"):
        host = urlsplit(env[variable]).hostname
        assert host in services, f"{variable} points at {host}, which is no compose service"
    assert urlsplit(env["ORGMEM_BROKER_URL"]).scheme == "redis"
    assert "ORGMEM_STORE_URL" in unescape(" ".join(services["minio-setup"]["command"])), (
        "minio-setup creates the bucket named by ORGMEM_STORE_URL")


def test_no_host_interpolation_left_unescaped():
    """A lone ``$VAR`` would be filled from the host's environment (usually empty) by compose."""
    text = re.sub(r"#.*", "", COMPOSE.read_text()).replace("$$", "")
    assert "$" not in text, "escape shell variables as $$VAR in compose.yaml"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    used = set()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/", "~")):
                used.add(source)
    assert used == declared, f"used {sorted(used)} vs declared {sorted(declared)}"


# -- image -------------------------------------------------------------------------------------

def test_dockerfile_builds_what_compose_asks(services):
    for service in services.values():
        if is_ours(service):
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            assert context == REPO and (context / service["build"]["dockerfile"]) == DOCKERFILE
    for word, args in dockerfile_instructions():
        if word == "COPY":
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"


def test_dockerfile_pins_the_projects_torch():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_pin,) = [d for d in deps if d.startswith("torch==")]
    assert dockerfile_args()["TORCH_VERSION"] == torch_pin.removeprefix("torch==")
    assert dockerfile_args()["TORCH_INDEX_URL"].endswith("/cpu"), "the default image is the CPU one"
