"""The artifact store in a bucket (gcp-storage-emulator on 127.0.0.1, the real google-cloud-storage client): two
machines with separate disks share files through it, and the champion pointer cannot be won twice."""

from __future__ import annotations

import json
import threading

import pytest

from fakenews_ml.environment import artifact_store, store_uri
from fakenews_ml.errors import ChampionMoved, FakeNewsError
from fakenews_ml.store import BucketStore


def _machine(home, bucket, monkeypatch) -> BucketStore:
    """The store as a machine whose FAKENEWS_HOME is ``home`` sees it."""
    monkeypatch.setenv("FAKENEWS_HOME", str(home))
    monkeypatch.setenv("FAKENEWS_STORE", bucket.uri)
    store = artifact_store()
    assert isinstance(store, BucketStore) and store.root == home.resolve()
    return store


def test_the_store_is_chosen_by_one_variable(monkeypatch):
    assert store_uri({}) is None
    assert store_uri({"FAKENEWS_STORE": "gs://team-bucket/ml/fakenews/"}) == "gs://team-bucket/ml/fakenews"
    assert store_uri({"FAKENEWS_GCS_BUCKET": "b"}) == "gs://b/fakenews"  # the older spelling folds into it
    assert store_uri({"FAKENEWS_GCS_BUCKET": "b", "FAKENEWS_GCS_PREFIX": "/p/"}) == "gs://b/p"
    for bad in ("s3://bucket", "gs://", "/local/folder"):
        with pytest.raises(FakeNewsError, match="FAKENEWS_STORE"):
            store_uri({"FAKENEWS_STORE": bad})


def test_files_written_on_one_machine_are_read_on_another(gcs_bucket, tmp_path, monkeypatch):
    a = _machine(tmp_path / "a", gcs_bucket, monkeypatch)
    folder = a.path("assets/demo/k1")
    (folder / "sub").mkdir(parents=True)
    (folder / "data.txt").write_text("written on a")
    (folder / "sub" / "more.bin").write_bytes(b"\x00\x01" * 1000)
    (folder / ".data.txt.partial-1-ab").write_text("someone's unfinished write")
    assert a.publish("assets/demo/k1") == f"{gcs_bucket.uri}/assets/demo/k1"
    assert set(gcs_bucket.objects("fakenews/assets/demo")) == {
        "fakenews/assets/demo/k1/data.txt",
        "fakenews/assets/demo/k1/sub/more.bin",
    }

    b = _machine(tmp_path / "b", gcs_bucket, monkeypatch)
    assert not b.path("assets/demo/k1").exists()
    fetched = b.fetch("assets/demo/k1")
    assert fetched == tmp_path.resolve() / "b" / "assets/demo/k1"
    assert (fetched / "data.txt").read_text() == "written on a" and (
        fetched / "sub" / "more.bin"
    ).stat().st_size == 2000
    assert b.fetch("assets/demo/k1/data.txt").read_text() == "written on a"  # a single file too

    (folder / "data.txt").write_text("changed on a")  # a mutable file (a manifest, a report) is re-fetched
    a.publish("assets/demo/k1")
    assert (b.fetch("assets/demo/k1") / "data.txt").read_text() == "changed on a"
    with pytest.raises(FileNotFoundError, match="assets/demo/none"):
        b.fetch("assets/demo/none")


def test_two_concurrent_promotions_cannot_both_win(gcs_bucket, tmp_path, monkeypatch):
    a = _machine(tmp_path / "a", gcs_bucket, monkeypatch)
    b = _machine(tmp_path / "b", gcs_bucket, monkeypatch)
    for name in ("m1", "m2", "m3"):
        (a.path(f"models/{name}")).mkdir(parents=True)
        a.path(f"models/{name}/bundle.json").write_text("{}")
        a.publish(f"models/{name}")
    assert a.read_champion() is None and b.read_champion() is None

    # both machines promote from "no champion": exactly one wins, whatever the interleaving
    outcomes, start = {}, threading.Barrier(2)

    def promote(store, location):
        start.wait()
        try:
            store.write_champion(location, expected=None)
            outcomes[location] = "won"
        except ChampionMoved:
            outcomes[location] = "refused"

    threads = [threading.Thread(target=promote, args=args) for args in ((a, "models/m1"), (b, "models/m2"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["refused", "won"]
    winner = next(location for location, outcome in outcomes.items() if outcome == "won")
    assert a.read_champion() == b.read_champion() == winner
    pointer = json.loads(gcs_bucket.objects("fakenews/production/champion.json")["fakenews/production/champion.json"])
    assert pointer == {"location": winner}

    # the generation precondition itself: a write based on a pointer read before another write is refused
    stale_generation = b._pointer()[1]
    a.write_champion("models/m3", expected=winner)
    from google.api_core.exceptions import PreconditionFailed

    with pytest.raises(PreconditionFailed):
        b._bucket().blob(b._name("production/champion.json")).upload_from_string(
            json.dumps({"location": winner}), if_generation_match=stale_generation
        )
    # the other machine follows the new champion: its local link points at its own fetched copy
    assert b.read_champion() == "models/m3" and (b.path("production/champion") / "bundle.json").is_file()
