"""The gcp-storage-emulator server, plus the one GCS behaviour it lacks that the project relies on: the
``ifGenerationMatch`` precondition on uploads (412 when the object's generation differs; 0 = "must not exist"),
as documented for the JSON API. Run as a process: ``python gcs_emulator.py PORT BUCKET``."""

from __future__ import annotations

import sys
from http import HTTPStatus

from gcp_storage_emulator.exceptions import NotFound
from gcp_storage_emulator.handlers import objects

_insert = objects.insert


def _object_name(request) -> str | None:
    if "name" in request.query:
        return request.query["name"][0]
    data = request.data
    return data.get("meta", {}).get("name") if isinstance(data, dict) else None


def insert_with_precondition(request, response, storage, *args, **kwargs):
    wanted = request.query.get("ifGenerationMatch")
    if wanted:
        try:
            current = int(storage.get_file_obj(request.params["bucket_name"], _object_name(request))["generation"])
        except NotFound:
            current = 0
        if current != int(wanted[0]):
            response.status = HTTPStatus.PRECONDITION_FAILED
            response.json(
                {"error": {"code": 412, "message": "At least one of the pre-conditions you specified did not hold."}}
            )
            return None
    return _insert(request, response, storage, *args, **kwargs)


objects.insert = insert_with_precondition  # before the server module builds its routes from it

if __name__ == "__main__":
    from gcp_storage_emulator.server import create_server

    port, bucket = int(sys.argv[1]), sys.argv[2]
    create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket).run()
