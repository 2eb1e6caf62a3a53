"""Print a dagster.yaml made of a base file with top-level blocks replaced by those of override files.

    python docker/merge_instance_yaml.py docker/dagster.yaml docker/run_launcher.local.yaml > "$DAGSTER_HOME/dagster.yaml"

A block is replaced whole, never deep-merged: DockerRunLauncher's config must not leak into another launcher.
"""

import sys

import yaml


def merge(base: dict, *overrides: dict) -> dict:
    merged = dict(base)
    for override in overrides:
        merged.update(override)
    return merged


def main(paths: list[str]) -> int:
    if len(paths) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    documents = []
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle) or {}
        if not isinstance(document, dict):
            print(f"{path}: expected a mapping of instance settings", file=sys.stderr)
            return 2
        documents.append(document)
    yaml.safe_dump(merge(*documents), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
