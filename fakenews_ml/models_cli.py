"""``fakenews models``: the bundles in the artifact store, the champion, and rolling it back.

    fakenews models list                 bundles (newest first) with test metrics, the champion marked; promotions
    fakenews models show ID              one bundle in full (ID: a version, or a unique prefix of one)
    fakenews models rollback [ID]        make ID (default: the previous champion) the champion again

Registered by ``fakenews_ml.cli``; the registry (``fakenews_ml.registry``) does the work, so the Dagster
``rollback_champion`` job and this command re-point the champion the same way.
"""

from __future__ import annotations

import json
import sys

METRIC_KEYS = ("accuracy", "macro_f1", "roc_auc")


def add_models(sub) -> None:
    p = sub.add_parser(
        "models",
        help="list model bundles, show one, roll the champion back",
        description="The model bundles in the artifact store ($FAKENEWS_HOME or the bucket) and the production "
        "champion. A running API picks up a rollback within a second, without a restart.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="bundles, their test metrics, the champion and the promotions")
    listing.add_argument("--json", action="store_true", help="print JSON instead of tables")
    listing.set_defaults(run=cmd_list)
    show = actions.add_parser("show", help="one bundle: metadata, metrics, lineage, out-of-domain profile")
    show.add_argument("id", help="a bundle version (or a unique prefix of one), as `fakenews models list` shows")
    show.set_defaults(run=cmd_show)
    back = actions.add_parser(
        "rollback",
        help="make an earlier bundle the champion again (recorded in the promotion history)",
        description="Re-points the champion atomically, only if nobody promoted another model meanwhile.",
    )
    back.add_argument("id", nargs="?", help="bundle version or unique prefix (default: the previous champion)")
    back.add_argument("--reason", default="", help="why (kept in the promotion history)")
    back.set_defaults(run=cmd_rollback)


def _test_metrics(metrics: dict) -> dict:
    test = metrics.get("test") or {}
    return {k: round(float(test[k]), 4) for k in METRIC_KEYS if isinstance(test.get(k), (int, float))}


def _listing() -> dict:
    from fakenews_ml.bundle import read_json
    from fakenews_ml.registry import list_bundles, promotion_history

    bundles = [
        {
            "version": b["meta"]["version"],
            "champion": b["champion"],
            "created_at": b["meta"]["created_at"],
            "location": b["location"],
            **_test_metrics(read_json(b["path"], "metrics")),
        }
        for b in list_bundles()
    ]
    return {"bundles": bundles, "promotions": promotion_history()}


def cmd_list(args) -> int:
    listing = _listing()
    if args.json:
        print(json.dumps(listing, indent=2, default=str))
        return 0
    if not listing["bundles"]:
        print("no model bundles in the store yet (train one: `fakenews train` or `dagster dev`)")
        return 0
    rows = [
        {"": "*" if b["champion"] else "", **{k: v for k, v in b.items() if k != "champion"}}
        for b in listing["bundles"]
    ]
    print(_table(rows, ["", "version", "created_at", *METRIC_KEYS, "location"]))
    print("\n* = production champion")
    if listing["promotions"]:
        print("\npromotions (oldest first):")
        print(_table(listing["promotions"], ["at", "version", "previous", "reason"]))
    return 0


def cmd_show(args) -> int:
    from fakenews_ml.bundle import read_json
    from fakenews_ml.model.domain import load_domain
    from fakenews_ml.model.encoder import encoder_label
    from fakenews_ml.registry import promotion_history, resolve_bundle

    bundle = resolve_bundle(args.id)
    path, meta = bundle["path"], bundle["meta"]
    domain = load_domain(path)
    quantization = read_json(path, "quantization")
    detail = {
        "version": meta["version"],
        "location": bundle["location"],
        "champion": bundle["champion"],
        "created_at": meta["created_at"],
        "threshold": meta["threshold"],
        "encoder": encoder_label(meta["model_config"].get("encoder")),
        "metrics": read_json(path, "metrics"),
        "lineage": read_json(path, "lineage"),
        "out_of_domain": domain.summary() if domain is not None else None,
        "serving_variant": quantization.get("recommended", "fp32"),
        "promotions": [p for p in promotion_history() if p.get("location") == bundle["location"]],
    }
    print(json.dumps(detail, indent=2, default=str))
    return 0


def cmd_rollback(args) -> int:
    from fakenews_ml.registry import rollback

    done = rollback(args.id, reason=args.reason)
    print(
        f"champion is now {done['version']} ({done['location']}), was {done['previous_version'] or done['previous']}",
        file=sys.stdout,
    )
    return 0


def _table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    cells = [[("" if row.get(c) is None else str(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    return "\n".join(lines)
