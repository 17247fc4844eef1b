"""docker-compose.yml, docker/compose.workers.yml and the Dockerfiles, checked without Docker (none can
run here): the services, volumes, health checks and GPU reservation are there, variables resolve to a
valid store URL, and every command uses flags the ``hyperhive`` CLI really has."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from hyperhive.cli import app
from hyperhive.store.mongo import parse_mongo_url

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
WORKERS = ROOT / "docker" / "compose.workers.yml"
ENV_EXAMPLE = ROOT / "docker" / "env.example"
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?error}``; a missing required one fails."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op and op.endswith("?"):
            raise KeyError(f"{name}: {arg}")
        return arg or ""

    return _VAR.sub(one, text)


def env_example() -> dict[str, str]:
    pairs = (
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and line[0] != "#"
    )
    return {k.strip(): v.strip() for k, v in pairs}


def cli_options(*path: str) -> set[str]:
    """The option names of ``hyperhive <path...>``."""
    cmd: Any = typer.main.get_command(app)
    for name in path:
        assert hasattr(cmd, "get_command"), f"{name}: not a command group"
        sub = cmd.get_command(cmd.context_class(cmd), name)
        if sub is None:
            pytest.skip(f"`hyperhive {' '.join(path)}` is not registered yet (its part is not built)")
        cmd = sub
    return {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}


def assert_real_command(argv: list[str]) -> None:
    assert argv[0] == "hyperhive"
    sub = [a for a in argv[1:] if not a.startswith("-")][:1]
    flags = {a for a in argv[1:] if a.startswith("--")}
    assert flags <= cli_options(*sub), f"unknown flags in {argv}"


def test_compose_has_mongo_with_auth_volume_and_healthcheck() -> None:
    compose = load(COMPOSE)
    mongo = compose["services"]["mongo"]
    assert mongo["image"].startswith("mongo:7")
    env = mongo["environment"]
    assert "${MONGO_ROOT_USERNAME:?" in env["MONGO_INITDB_ROOT_USERNAME"]
    assert "${MONGO_ROOT_PASSWORD:?" in env["MONGO_INITDB_ROOT_PASSWORD"]
    assert "mongo-data:/data/db" in mongo["volumes"] and "mongo-data" in compose["volumes"]
    init = next(v for v in mongo["volumes"] if "docker-entrypoint-initdb.d" in v)
    init_dir = ROOT / init.split(":")[0]
    script = (init_dir / "10-hyperhive-user.js").read_text()
    assert '"readWrite", db: "hyperhive"' in script
    assert "ping" in " ".join(mongo["healthcheck"]["test"])
    port = interpolate(mongo["ports"][0], {})
    assert port == "127.0.0.1:27017:27017", "published on this machine only unless MONGO_BIND says so"


def test_services_reach_mongo_as_the_least_privilege_user() -> None:
    compose = load(COMPOSE)
    env = env_example()
    for name in ("api", "worker", "worker-cpu"):
        service = compose["services"][name]
        url = interpolate(service["environment"]["HYPERHIVE_STORE"], env)
        parsed = parse_mongo_url(url)
        assert parsed["nodelist"] == [("mongo", 27017)] and parsed["database"] == "hyperhive"
        assert parsed["username"] == env["HYPERHIVE_DB_USER"]
        assert parsed["options"]["authSource"] == "hyperhive"
        assert service["depends_on"]["mongo"]["condition"] == "service_healthy"
        with pytest.raises(KeyError, match="HYPERHIVE_DB_PASSWORD"):
            interpolate(service["environment"]["HYPERHIVE_STORE"], {"HYPERHIVE_DB_USER": "x"})


def test_api_service_serves_on_all_interfaces_with_real_flags() -> None:
    api = load(COMPOSE)["services"]["api"]
    assert api["command"][:2] == ["hyperhive", "serve"] and "0.0.0.0" in api["command"]
    assert_real_command(api["command"])
    assert (ROOT / api["build"]["dockerfile"]).is_file()
    assert "/readyz" in " ".join(api["healthcheck"]["test"])


@pytest.mark.parametrize("path", [COMPOSE, WORKERS])
def test_gpu_worker_reserves_an_nvidia_gpu_and_scales(path: Path) -> None:
    services = load(path)["services"]
    worker = services["worker"]
    assert "replicas" not in worker.get("deploy", {}), "--scale worker=N decides"
    assert "container_name" not in worker, "a fixed name would forbid --scale"
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert interpolate(device["device_ids"][0], {}) == "0"
    assert interpolate(device["device_ids"][0], {"WORKER_GPU": "3"}) == "3"
    assert worker["command"][:2] == ["hyperhive", "worker"]
    assert services["worker-cpu"]["profiles"] == ["cpu"] and "deploy" not in services["worker-cpu"]
    assert worker["stop_grace_period"] == "60s"


@pytest.mark.parametrize("path", [COMPOSE, WORKERS])
def test_worker_commands_use_real_flags(path: Path) -> None:
    for name in ("worker", "worker-cpu"):
        assert_real_command(load(path)["services"][name]["command"])


def test_workers_file_needs_the_store_url_and_builds_from_the_repo_root() -> None:
    services = load(WORKERS)["services"]
    for service in services.values():
        with pytest.raises(KeyError, match="HYPERHIVE_STORE"):
            interpolate(service["environment"]["HYPERHIVE_STORE"], {})
        assert (WORKERS.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["network_mode"] == "host", "reaches 127.0.0.1:27017 on the database machine"


@pytest.mark.parametrize("name", ["api", "worker-cpu", "worker-gpu"])
def test_dockerfiles_run_as_a_user_and_their_cmd_is_real(name: str) -> None:
    text = (ROOT / "docker" / f"Dockerfile.{name}").read_text()
    assert re.search(r"^USER hyperhive$", text, re.M)
    cmd = json.loads(re.findall(r"^CMD (\[.*\])$", text, re.M)[-1])
    assert_real_command(cmd)
    ignore = (ROOT / "docker" / f"Dockerfile.{name}.dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignore), "no history, virtualenv or secrets in the image"


@pytest.mark.parametrize("path", [COMPOSE, WORKERS])
def test_workers_mount_the_data_folder_and_the_keras_dataset_cache(path: Path) -> None:
    """`path:`/`folder:` datasets are files on the worker machine and keras.datasets download into
    ~/.keras: without volumes neither reaches a container or survives a restart."""
    compose = load(path)
    assert "keras-cache" in compose["volumes"]
    home = "/var/lib/hyperhive"  # the workers' HOME (Dockerfiles: useradd --home-dir)
    for name in ("worker", "worker-cpu"):
        volumes = compose["services"][name]["volumes"]
        assert f"keras-cache:{home}/.keras" in volumes
        [data] = [v for v in volumes if ":/data:" in v]
        assert (
            data.endswith(":/data:ro")
            and interpolate(data, {"HYPERHIVE_DATA_DIR": "/srv/d"}) == "/srv/d:/data:ro"
        )
    for name in ("cpu", "gpu"):
        text = (ROOT / "docker" / f"Dockerfile.worker-{name}").read_text()
        assert f"--home-dir {home}" in text
