"""docker/ without a Docker engine (none runs on these machines): every file a Dockerfile copies exists, every
command the images and the compose file run is a real entry point of the installed project, the compose file,
its .env and dagster.yaml agree with each other, and Dagster's own loaders accept the instance and the workspace."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

from .files import (
    COMPOSE,
    DOCKER,
    ENV_EXAMPLE,
    GPU_ENV,
    REPO,
    copy_sources,
    dockerfile_instructions,
    env_references,
    exec_form,
    load_compose,
    read_env_file,
)
from .processes import stop_group

BIN = Path(sys.executable).parent
SERVICES = {"postgres", "dagster_init", "user_code", "webserver", "daemon", "api", "dashboard"}
ONE_SHOT = {"postgres", "dagster_init"}  # the database and the schema migration: no artifacts
SECRETS = ("POSTGRES_PASSWORD", "DAGSTER_POSTGRES_PASSWORD", "WANDB_API_KEY")
ARTIFACT_VOLUME = "fakenews_artifacts"


def builds() -> dict[str, tuple[Path, Path]]:
    """Service -> (build context, Dockerfile), as docker compose resolves them (relative to the compose file)."""
    found = {}
    for name, service in load_compose()["services"].items():
        if "build" in service:
            context = (COMPOSE.parent / service["build"]["context"]).resolve()
            found[name] = (context, (context / service["build"]["dockerfile"]).resolve())
    return found


def image_commands() -> list[list[str]]:
    """Every command a container of ours runs: Dockerfile CMD/ENTRYPOINT and compose entrypoint/command."""
    commands = []
    for _, dockerfile in set(builds().values()):
        commands += [
            exec_form(args) for kind, args in dockerfile_instructions(dockerfile) if kind in ("CMD", "ENTRYPOINT")
        ]
    for service in load_compose()["services"].values():
        if "build" in service:  # postgres runs the official image's own command
            commands += [service[key] for key in ("entrypoint", "command") if key in service]
    return commands


def test_every_service_is_there_and_each_image_is_built_from_a_dockerfile_here():
    compose = load_compose()
    assert set(compose["services"]) == SERVICES
    assert {path.name for _, path in builds().values()} == {"Dockerfile_dagster", "Dockerfile_user_code"}
    for context, dockerfile in builds().values():
        assert context.is_dir() and dockerfile.is_file(), dockerfile


def test_every_file_a_dockerfile_copies_exists_and_reaches_the_build():
    checked = 0
    for context, dockerfile in set(builds().values()):
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        allowed = ignore.read_text().splitlines() if ignore.exists() else None
        for kind, args in dockerfile_instructions(dockerfile):
            if kind not in ("COPY", "ADD"):
                continue
            for source in copy_sources(args):
                assert (context / source).exists(), f"{dockerfile.name}: COPY {source}: missing in {context}"
                if allowed is not None:  # the Dockerfile's own .dockerignore excludes everything else
                    assert f"!{source}" in allowed or f"!{source}/**" in allowed, f"{ignore.name} drops {source}"
                checked += 1
    assert checked >= 6  # dagster.yaml, workspace.yaml, pyproject.toml, README.md and the three packages


def test_pins_in_the_dockerfiles_match_pyproject():
    pins = {}
    for dependency in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, sep, version = dependency.partition("==")
        if sep:
            pins[name] = version
    args = {}
    for _, dockerfile in set(builds().values()):
        for kind, value in dockerfile_instructions(dockerfile):
            if kind == "ARG" and "=" in value:
                key, _, default = value.partition("=")
                args[key] = default
    assert args["TORCH_VERSION"] == pins["torch"]
    assert args["DAGSTER_VERSION"] == pins["dagster"] == pins["dagster-webserver"]
    assert args["DAGSTER_LIBS_VERSION"] == pins["dagster-gcp"]  # the 0.29.x family the libraries move in
    assert args["TORCH_CHANNEL"] == "cpu"  # the default image is the CPU one


def test_every_command_is_a_real_entry_point_with_the_options_it_uses():
    commands = image_commands()
    assert len(commands) >= 6  # code server, schema migration, webserver, daemon, api, dashboard
    for command in commands:
        executable = BIN / command[0]
        assert executable.exists(), f"{command[0]} is not installed by the project: {command}"
        words = []
        for word in command[1:]:
            if word.startswith("-"):
                break
            words.append(word)
        done = subprocess.run([str(executable), *words, "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{' '.join(command)}: --help exited {done.returncode}\n{done.stderr[-2000:]}"
        for option in (word for word in command[1 + len(words) :] if word.startswith("-")):
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", done.stdout), f"{command}: no {option}"
        if "-m" in command:  # the module the code server serves
            module = command[command.index("-m") + 1]
            assert importlib.util.find_spec(module) is not None, module


def test_compose_references_only_what_is_defined():
    text = COMPOSE.read_text()
    example = read_env_file(ENV_EXAMPLE)
    assert env_references(text) <= set(example), sorted(env_references(text) - set(example))
    compose = load_compose(example)
    volumes, networks = set(compose["volumes"]), set(compose["networks"])
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: bind mount {source} missing"
            elif not source.startswith("/"):
                assert source in volumes, f"{name}: volume {source} not declared"
        assert set(service.get("networks", [])) <= networks, name
        assert set(service.get("depends_on", {})) <= SERVICES, name
        for key in SECRETS:  # secrets come from .env, never literal
            value = service.get("environment", {}).get(key)
            assert value is None or value == example[key.removeprefix("DAGSTER_")], f"{name}: {key}"
            raw = re.search(rf"^\s*{key}:\s*(.+)$", text, re.M)
            assert raw is None or raw.group(1).startswith("${"), f"{key} is a literal in the compose file"


def test_every_service_shares_the_artifact_volume_as_fakenews_home_and_waits_for_a_healthy_postgres():
    compose = load_compose(read_env_file(ENV_EXAMPLE))
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    for name, service in services.items():
        if name in ONE_SHOT:
            continue
        home = service["environment"]["FAKENEWS_HOME"]
        assert f"{ARTIFACT_VOLUME}:{home}" in service["volumes"], name
        waits = service.get("depends_on", {})
        assert "postgres" in waits or any("postgres" in services[d].get("depends_on", {}) for d in waits), name
    assert services["user_code"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dagster_init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("webserver", "daemon"):  # Dagster's schema exists before the services that share it start
        assert services[name]["depends_on"]["dagster_init"]["condition"] == "service_completed_successfully"
    # runs start from the user-code image: DAGSTER_CURRENT_IMAGE names the image compose builds
    assert services["user_code"]["environment"]["DAGSTER_CURRENT_IMAGE"] == services["user_code"]["image"]
    assert services["api"]["image"] == services["dashboard"]["image"] == services["user_code"]["image"]
    assert services["user_code"]["environment"]["FAKENEWS_PREDICTION_LOG_URL"].startswith("postgresql+psycopg://")


def test_the_docker_run_launcher_matches_the_compose_network_volume_and_daemon_environment():
    compose = load_compose(read_env_file(ENV_EXAMPLE))
    launcher = yaml.safe_load((DOCKER / "dagster.yaml").read_text())["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    config = launcher["config"]
    assert config["network"] in {n["name"] for n in compose["networks"].values()}
    (mount,) = config["container_kwargs"]["volumes"]
    volume, target = mount.split(":")
    assert volume == compose["volumes"][ARTIFACT_VOLUME]["name"]
    daemon_env = compose["services"]["daemon"]["environment"]
    assert target == daemon_env["FAKENEWS_HOME"]
    # DockerRunLauncher copies each listed variable from the daemon's environment and fails a run if one is unset
    assert set(config["env_vars"]) <= set(daemon_env), sorted(set(config["env_vars"]) - set(daemon_env))
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    for service in ("webserver", "daemon"):
        env = compose["services"][service]["environment"]
        assert env[workspace["host"]["env"]] == "user_code" and env[workspace["port"]["env"]] == "4000"


def test_gpu_env_asks_docker_for_gpus_through_dagsters_container_context():
    from dagster_docker.container_context import DockerContainerContext

    import docker

    gpu = read_env_file(GPU_ENV)
    assert gpu["TORCH_CHANNEL"].startswith("cu")
    context = DockerContainerContext.create_from_config(json.loads(gpu["FAKENEWS_RUN_CONTAINER_CONTEXT"]))
    (request,) = context.container_kwargs["device_requests"]
    # docker-py builds the request the engine receives (docker run --gpus all)
    host_config = docker.types.HostConfig(version="1.44", device_requests=[request])
    (built,) = host_config["DeviceRequests"]
    assert built["Count"] == -1 and built["Capabilities"] == [["gpu"]] and built["Driver"] == "nvidia"
    # the default .env asks for nothing
    default = DockerContainerContext.create_from_config(
        json.loads(read_env_file(ENV_EXAMPLE)["FAKENEWS_RUN_CONTAINER_CONTEXT"])
    )
    assert "device_requests" not in default.container_kwargs
    assert set(gpu) <= set(read_env_file(ENV_EXAMPLE))  # gpu.env only overrides what .env defines
    # read after .env, it reaches the code server as one JSON string (Dagster's DAGSTER_CONTAINER_CONTEXT)
    user_code = load_compose({**read_env_file(ENV_EXAMPLE), **gpu})["services"]["user_code"]["environment"]
    assert json.loads(user_code["DAGSTER_CONTAINER_CONTEXT"]) == json.loads(gpu["FAKENEWS_RUN_CONTAINER_CONTEXT"])


def merged_instance_yaml(tmp_path: Path, *overrides: str) -> Path:
    """A DAGSTER_HOME holding docker/dagster.yaml as the image has it, or, with ``overrides``, the file
    docker/merge_instance_yaml.py makes of it (as docker/README.md says)."""
    home = tmp_path / "dagster_home"
    home.mkdir(parents=True)
    if not overrides:
        shutil.copy(DOCKER / "dagster.yaml", home / "dagster.yaml")
        return home
    files = [str(DOCKER / "dagster.yaml"), *(str(DOCKER / name) for name in overrides)]
    done = subprocess.run(
        [sys.executable, str(DOCKER / "merge_instance_yaml.py"), *files], capture_output=True, text=True, check=True
    )
    (home / "dagster.yaml").write_text(done.stdout)
    return home


def instance_env(postgres: str, home: Path) -> dict[str, str]:
    """The DAGSTER_POSTGRES_* variables docker/dagster.yaml reads, pointed at ``postgres``."""
    from sqlalchemy.engine import make_url

    url = make_url(postgres)
    return {
        "DAGSTER_HOME": str(home),
        "DAGSTER_POSTGRES_HOST": url.host or "127.0.0.1",
        "DAGSTER_POSTGRES_PORT": str(url.port or 5432),
        "DAGSTER_POSTGRES_USER": url.username or "postgres",
        "DAGSTER_POSTGRES_PASSWORD": url.password or "unused-with-trust-auth",
        "DAGSTER_POSTGRES_DB": url.database,
        "DAGSTER_COMPUTE_LOG_DIR": str(home / "compute_logs"),
    }


@dg.asset(name="probe")
def _probe_asset() -> int:
    return 1


def test_dagster_yaml_loads_as_a_postgres_instance_with_the_docker_launcher(tmp_path, postgres_url, monkeypatch):
    from dagster_docker import DockerRunLauncher
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    home = merged_instance_yaml(tmp_path)
    env = instance_env(postgres_url, home)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # the documented CLI check: builds the instance from $DAGSTER_HOME/dagster.yaml and migrates the schema
    info = subprocess.run([str(BIN / "dagster"), "instance", "info"], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr[-3000:]
    assert "DockerRunLauncher" in info.stdout and "PostgresRunStorage" in info.stdout

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert isinstance(instance.run_launcher, DockerRunLauncher)
        assert instance.run_launcher.networks == ["fakenews"]
        assert instance.run_storage.get_runs() == []  # a working connection to the fresh database
        # a run writes its events (the event log NOTIFYs listeners: fails with the wrong driver)
        result = dg.materialize([_probe_asset], instance=instance)
        assert result.success
        assert instance.get_latest_materialization_event(dg.AssetKey("probe")) is not None

    # the documented override swaps the launcher and nothing else
    local = merged_instance_yaml(tmp_path / "local", "run_launcher.local.yaml")
    with dg.DagsterInstance.from_config(str(local)) as instance:
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert isinstance(instance.run_storage, PostgresRunStorage)
    merged = yaml.safe_load((local / "dagster.yaml").read_text())
    original = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    assert {k: v for k, v in merged.items() if k != "run_launcher"} == {
        k: v for k, v in original.items() if k != "run_launcher"
    }


def wait_for_code_server(server: subprocess.Popen, port: int, log: Path, timeout: float = 180) -> None:
    """Until ``dagster api grpc-health-check`` passes (the definitions are loaded) or the server died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the code server exited:\n" + log.read_text()[-3000:]
        check = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)]
        if subprocess.run(check, capture_output=True, timeout=60).returncode == 0:
            return
        time.sleep(1)
    raise AssertionError("the code server did not come up:\n" + log.read_text()[-3000:])


@pytest.mark.slow
def test_the_workspace_loads_the_code_location_from_the_code_server(tmp_path, postgres_url, port_finder):
    """The user-code image's command (on 127.0.0.1 and a free port) serves the definitions, and
    docker/workspace.yaml finds them there, with the instance of docker/dagster.yaml."""
    home = merged_instance_yaml(tmp_path)
    port = port_finder()
    env = {
        **os.environ,
        **instance_env(postgres_url, home),
        "FAKENEWS_HOME": str(tmp_path / "fakenews_home"),
        "FAKENEWS_CODE_SERVER_HOST": "127.0.0.1",
        "FAKENEWS_CODE_SERVER_PORT": str(port),
    }
    (cmd,) = [c for c in image_commands() if c[:3] == ["dagster", "api", "grpc"]]
    cmd = [str(BIN / "dagster"), *cmd[1:]]
    cmd[cmd.index("-h") + 1], cmd[cmd.index("-p") + 1] = "127.0.0.1", str(port)
    log = (tmp_path / "code_server.log").open("w")
    server = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_code_server(server, port, tmp_path / "code_server.log")
        done = subprocess.run(
            [str(BIN / "dagster"), "definitions", "validate", "-w", str(DOCKER / "workspace.yaml")],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        stop_group(server)
        log.close()
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:] + (tmp_path / "code_server.log").read_text()[-2000:]
    assert "Validation successful for code location fakenews" in output
