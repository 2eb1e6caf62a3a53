"""Sources: local paths and file:// as they are; http(s) through a checksummed cache, against a real server."""

from __future__ import annotations

import hashlib
import json
import socket
from pathlib import Path

import pytest

from fakenews_ml.data.readers import read_sources
from fakenews_ml.data.sources import ResolvedSource, resolve, sha256_file
from fakenews_ml.errors import DataSourceError

CSV = "title,text,label\nAliens built the pyramids,,1\nParliament passes budget,,0\nMoon made of cheese,,1\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cache_root(home: Path) -> Path:
    return home / "cache" / "downloads"


def cache_files(home: Path) -> list[Path]:
    root = cache_root(home)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# --- local ----------------------------------------------------------------------------------------------


def test_sha256_file(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # more than one read chunk
    path.write_bytes(data)
    assert sha256_file(path) == sha(data)


def test_resolve_local_path(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text(CSV)
    resolved = resolve(str(path), progress=False)
    assert isinstance(resolved, ResolvedSource)
    assert resolved.uri == str(path)
    assert resolved.path == path.resolve()
    assert resolved.sha256 == sha(CSV.encode())


def test_resolve_relative_path(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "news.csv").write_text(CSV)
    monkeypatch.chdir(tmp_path)
    resolved = resolve("data/news.csv", progress=False)
    assert resolved.path == (tmp_path / "data" / "news.csv").resolve()
    assert resolved.path.is_absolute()


def test_resolve_home_relative_path(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "news.csv").write_text(CSV)
    assert resolve("~/news.csv", progress=False).path == (tmp_path / "news.csv").resolve()


def test_resolve_local_files_are_not_copied_to_the_cache(tmp_path, fakenews_home):
    path = tmp_path / "news.csv"
    path.write_text(CSV)
    resolve(str(path), progress=False)
    assert cache_files(fakenews_home) == []


def test_resolve_file_uri(tmp_path):
    path = tmp_path / "news.csv"
    path.write_text(CSV)
    resolved = resolve(path.as_uri(), progress=False)
    assert resolved.path == path.resolve()
    assert resolved.sha256 == sha(CSV.encode())
    assert resolve(f"file://localhost{path}", progress=False).path == path.resolve()


def test_resolve_percent_encoded_file_uri(tmp_path):
    path = tmp_path / "my news (v2).csv"
    path.write_text(CSV)
    uri = path.as_uri()
    assert "%20" in uri
    assert resolve(uri, progress=False).path == path.resolve()


def test_file_uri_with_remote_host_is_rejected():
    with pytest.raises(DataSourceError, match="remote host is not supported"):
        resolve("file://fileserver/share/news.csv", progress=False)


def test_missing_local_file_names_it(tmp_path):
    missing = tmp_path / "absent.csv"
    with pytest.raises(DataSourceError) as info:
        resolve(str(missing), progress=False)
    assert "source file not found" in str(info.value)
    assert str(missing) in str(info.value)
    with pytest.raises(DataSourceError, match="source file not found"):
        resolve(missing.as_uri(), progress=False)


def test_directory_is_not_a_source(tmp_path):
    with pytest.raises(DataSourceError, match="source file not found"):
        resolve(str(tmp_path), progress=False)


@pytest.mark.parametrize("uri", ["ftp://example.org/news.csv", "s3://bucket/news.csv"])
def test_unknown_scheme(uri):
    scheme = uri.split(":")[0]
    with pytest.raises(DataSourceError) as info:
        resolve(uri, progress=False)
    message = str(info.value)
    assert f"unsupported source scheme {scheme!r}" in message
    assert uri in message
    assert "http(s)://" in message


def test_gs_uri_without_object_fails_cleanly(fakenews_home):
    with pytest.raises(DataSourceError, match="gs:// URI needs a bucket and an object name"):
        resolve("gs://only-a-bucket", progress=False)
    assert cache_files(fakenews_home) == []


# --- http(s) against a real local server ------------------------------------------------------------------


def test_http_download_is_cached_with_manifest(http_server, fakenews_home):
    (http_server.root / "news.csv").write_text(CSV)
    url = http_server.url("news.csv")

    first = resolve(url, progress=False)

    assert http_server.hits("news.csv") == 1
    assert first.uri == url
    assert first.path.name == "news.csv"
    assert first.path.is_relative_to(cache_root(fakenews_home))
    assert first.path.read_text() == CSV
    assert first.sha256 == sha(CSV.encode())
    manifest_path = first.path.with_name("news.csv.sha256.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest == {"uri": url, "sha256": sha(CSV.encode()), "bytes": len(CSV.encode())}
    assert sorted(p.name for p in cache_files(fakenews_home)) == ["news.csv", "news.csv.sha256.json"]

    second = resolve(url, progress=False)

    assert http_server.hits("news.csv") == 1  # served from the cache, verified, not fetched again
    assert second == first


def test_http_cache_is_keyed_by_full_uri(http_server):
    (http_server.root / "news.csv").write_text(CSV)
    a = resolve(http_server.url("news.csv"), progress=False)
    b = resolve(http_server.url("news.csv") + "?v=2", progress=False)
    assert a.path != b.path and a.path.name == b.path.name == "news.csv"
    assert http_server.hits("news.csv") == 2


def test_http_corrupted_cache_is_detected(http_server):
    (http_server.root / "news.csv").write_text(CSV)
    url = http_server.url("news.csv")
    cached = resolve(url, progress=False).path
    cached.write_text(CSV + "Injected row,,0\n")

    with pytest.raises(DataSourceError) as info:
        resolve(url, progress=False)

    message = str(info.value)
    assert f"cached copy of {url} is corrupt" in message
    assert f"delete {cached.parent}" in message
    assert http_server.hits("news.csv") == 1  # detection, not a silent re-download


def test_http_unreadable_manifest_is_a_clear_error(http_server):
    (http_server.root / "news.csv").write_text(CSV)
    url = http_server.url("news.csv")
    cached = resolve(url, progress=False).path
    cached.with_name(cached.name + ".sha256.json").write_text("{not json")
    with pytest.raises(DataSourceError, match="download manifest .* is unreadable"):
        resolve(url, progress=False)


def test_http_missing_manifest_downloads_again(http_server):
    (http_server.root / "news.csv").write_text(CSV)
    url = http_server.url("news.csv")
    cached = resolve(url, progress=False).path
    cached.with_name(cached.name + ".sha256.json").unlink()
    again = resolve(url, progress=False)
    assert http_server.hits("news.csv") == 2
    assert again.sha256 == sha(CSV.encode())
    assert cached.with_name(cached.name + ".sha256.json").is_file()


def test_http_404_leaves_nothing_behind(http_server, fakenews_home):
    url = http_server.url("missing.csv")

    with pytest.raises(DataSourceError) as info:
        resolve(url, progress=False)

    message = str(info.value)
    assert url in message
    assert "HTTP 404" in message
    assert http_server.hits("missing.csv") == 1
    leftovers = list(cache_root(fakenews_home).rglob("*")) if cache_root(fakenews_home).exists() else []
    assert not [p for p in leftovers if p.name.startswith(".partial-")]
    assert not [p for p in leftovers if p.name.startswith("missing.csv")]
    assert cache_files(fakenews_home) == []

    # a failure does not poison the cache: once the file exists, it downloads
    (http_server.root / "missing.csv").write_text(CSV)
    assert resolve(url, progress=False).path.read_text() == CSV


def test_http_connection_refused_is_a_data_source_error(fakenews_home):
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/news.csv"
    with pytest.raises(DataSourceError, match=f"could not download {url}"):
        resolve(url, progress=False)
    assert cache_files(fakenews_home) == []


def test_read_sources_over_http_end_to_end(http_server, tmp_path):
    (http_server.root / "remote_news.csv").write_text(CSV)
    local = tmp_path / "local.csv"
    local.write_text("title,label\nLocal headline,0\n")
    uris = [http_server.url("remote_news.csv"), str(local)]

    frame, resolved = read_sources(uris, progress=False)

    assert frame["title"].tolist() == [
        "Aliens built the pyramids",
        "Parliament passes budget",
        "Moon made of cheese",
        "Local headline",
    ]
    assert frame["label"].tolist() == [1, 0, 1, 0]
    assert frame["source"].tolist() == ["remote_news"] * 3 + ["local"]
    assert [r.uri for r in resolved] == uris
    assert resolved[0].sha256 == sha(CSV.encode())

    again, _ = read_sources(uris, progress=False)
    assert again.equals(frame)
    assert http_server.hits("remote_news.csv") == 1


def test_read_sources_over_http_real_welfake_sample(http_server, datasets_dir):
    # Served from the real file in place (a symlink in the served folder), never copied into the repo.
    (http_server.root / "WELFake_Dataset_sample_1000.csv").symlink_to(datasets_dir / "WELFake_Dataset_sample_1000.csv")
    frame, resolved = read_sources([http_server.url("WELFake_Dataset_sample_1000.csv")], progress=False)
    assert len(frame) == 989
    assert set(frame["source"]) == {"WELFake_Dataset_sample_1000"}
    assert resolved[0].sha256 == sha256_file(datasets_dir / "WELFake_Dataset_sample_1000.csv")
