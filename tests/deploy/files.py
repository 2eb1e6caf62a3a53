"""Readers for the deployment files under docker/: the compose file with its .env interpolation, Dockerfile
instructions, and the env files. Small on purpose: the tests compare what these files say with each other and
with the installed tools, so the readers must not hide anything."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
GPU_ENV = DOCKER / "gpu.env"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error} and $VAR; "$$" is a literal dollar for the container
_REFERENCE = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them: comments and blank lines skipped, one pair of quotes removed."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key), f"{path.name}:{number}: not KEY=VALUE"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def env_references(text: str) -> set[str]:
    """Names of the variables ``text`` interpolates (never those behind an escaped ``$$``)."""
    return {m["braced"] or m["bare"] for m in _REFERENCE.finditer(text.replace("$$", ""))}


def interpolate(text: str, env: dict[str, str]) -> str:
    """``text`` with compose's interpolation applied from ``env`` (an unset variable is an error here)."""

    def value(match: re.Match) -> str:
        name, rest = match["braced"] or match["bare"], match["rest"] or ""
        if name in env and not (rest.startswith(":-") and env[name] == ""):
            return env[name]
        if rest.startswith((":-", "-")):
            return rest.split("-", 1)[1]
        raise KeyError(f"${name} is not defined")

    parts = text.split("$$")
    return "$".join(_REFERENCE.sub(value, part) for part in parts)


def load_compose(env: dict[str, str] | None = None) -> dict:
    """The compose file as a mapping (anchors and ``<<`` merges resolved); with ``env``, every string value
    interpolated, after parsing, as compose does (a JSON value stays one string)."""
    document = yaml.safe_load(COMPOSE.read_text())
    if env is None:
        return document

    def walk(node):
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return interpolate(node, env) if isinstance(node, str) else node

    return walk(document)


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """A CMD/ENTRYPOINT in exec (JSON) form; the shell form would hide the command from these checks."""
    value = json.loads(arguments)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def copy_sources(arguments: str) -> list[str]:
    """The source paths of a COPY instruction (flags such as --chown dropped; the last word is the target)."""
    if "--from=" in arguments:  # from another build stage, not from the context
        return []
    words = [w for w in arguments.split() if not w.startswith("--")]
    if words and words[0].startswith("["):
        words = exec_form(arguments)
    return words[:-1]


def service_command(name: str) -> list[str]:
    """What a compose service runs: its entrypoint or command, else its image's Dockerfile CMD."""
    service = load_compose()["services"][name]
    for key in ("entrypoint", "command"):
        if key in service:
            return list(service[key])
    dockerfile = (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).resolve()
    (cmd,) = [exec_form(args) for kind, args in dockerfile_instructions(dockerfile) if kind == "CMD"]
    return cmd


def with_options(command: list[str], values: dict[str, str]) -> list[str]:
    """``command`` with the value after each given option replaced (``{"-p": "4000"}``); every option must be there."""
    command = list(command)
    for option, value in values.items():
        command[command.index(option) + 1] = value
    return command
