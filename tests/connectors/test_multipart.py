"""Dataverse multipart $batch encoding and decoding of the documented response format."""

from __future__ import annotations

import json

from nav_crm_ops.connectors import BatchPart, decode_batch_response, encode_batch

DOCUMENTED_RESPONSE = (
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n"
    "Content-Type: multipart/mixed; boundary=changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb\r\n"
    "\r\n"
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "Content-ID: 1\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "Location: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24e4-3b8c-ec11-b832-000d3a8b5a6e)\r\n"
    "OData-EntityId: https://org.crm.dynamics.com/api/data/v9.2/tasks(a59c24e4-3b8c-ec11-b832-000d3a8b5a6e)\r\n"
    "\r\n"
    "\r\n"
    "--changesetresponse_ff83b4f1-ab48-430c-b81c-926a2c596abb--\r\n"
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 400 Bad Request\r\n"
    "REQ_ID: 5ecd1cb3-1730-4ffc-909c-d44c22270026\r\n"
    "Content-Type: application/json; odata.metadata=minimal\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    '{"error":{"code":"0x80044331","message":"A validation error occurred.  The length of the '
    "'subject' attribute of the 'task' entity exceeded the maximum allowed length of '200'.\"}}\r\n"
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f\r\n"
    "Content-Type: application/http\r\n"
    "Content-Transfer-Encoding: binary\r\n"
    "\r\n"
    "HTTP/1.1 204 No Content\r\n"
    "OData-Version: 4.0\r\n"
    "\r\n"
    "\r\n"
    "--batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f--\r\n"
)
CONTENT_TYPE = "multipart/mixed; boundary=batchresponse_c1bd45c1-dd81-470d-b897-e965846aad2f"


def test_documented_response_with_change_set_and_failing_part() -> None:
    parts = decode_batch_response(CONTENT_TYPE, DOCUMENTED_RESPONSE.encode())
    assert [p.status for p in parts] == [204, 400, 204]
    assert parts[0].headers["odata-entityid"].endswith("(a59c24e4-3b8c-ec11-b832-000d3a8b5a6e)")
    assert parts[1].body["error"]["code"] == "0x80044331"
    assert parts[2].body is None


def test_encoded_batch_has_one_top_level_part_per_request() -> None:
    content_type, body = encode_batch([
        BatchPart("PATCH", "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001)",
                  {"If-None-Match": "*"}, {"name": "Ünïcode & Co"}),
        BatchPart("DELETE", "/api/data/v9.2/accounts(00000000-0000-0000-0000-000000000002)"),
    ], boundary="batch_test")
    assert content_type == 'multipart/mixed; boundary="batch_test"'
    text = body.decode()
    assert text.count("--batch_test\r\n") == 2 and text.endswith("--batch_test--\r\n")
    assert "changeset" not in text
    first = text.split("--batch_test\r\n")[1]
    assert "PATCH /api/data/v9.2/accounts(00000000-0000-0000-0000-000000000001) HTTP/1.1" in first
    assert "If-None-Match: *" in first
    assert json.loads(first.split("\r\n\r\n", 2)[2].strip()) == {"name": "Ünïcode & Co"}


def test_encoded_requests_are_the_bytes_of_the_same_batch_parts() -> None:
    import random

    from nav_crm_ops.connectors.multipart import encode_requests

    rng = random.Random(3)
    requests = []
    for n in range(300):
        headers = dict(rng.sample([("If-Match", f'W/"{n}"'), ("If-None-Match", "*"),
                                   ("Prefer", "return=representation"),
                                   ("Content-Type", "application/json")], rng.randint(0, 3)))
        body = rng.choice([None, {}, {"name": f"Ä ö {n}", "n": n, "x": 1.5, "l": [1, None]}])
        requests.append((rng.choice(["PATCH", "POST", "DELETE", "GET"]),
                         f"/api/data/v9.2/accounts({n})", headers, body))
    parts = [BatchPart(*request) for request in requests]
    assert encode_requests(requests, "b_1") == encode_batch(parts, "b_1")
