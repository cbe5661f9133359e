"""/v1/files: upload with validation, list, retrieve, content, delete."""

from __future__ import annotations

import io

import openai
import pytest

from .helpers import jsonl, sql_rows


def upload(client, data: bytes, name="train.jsonl", purpose="fine-tune"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_upload_list_retrieve_content_delete(client):
    data = jsonl(sql_rows(3)) + b"\r\n"  # CRLF and a trailing newline survive byte for byte
    f = upload(client, data)
    assert f.id.startswith("file-") and f.purpose == "fine-tune" and f.bytes == len(data)
    assert f.filename == "train.jsonl"
    assert f.id in [x.id for x in client.files.list().data]
    assert client.files.retrieve(f.id).bytes == len(data)
    assert client.files.content(f.id).read() == data
    deleted = client.files.delete(f.id)
    assert deleted.deleted and deleted.id == f.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.NotFoundError):
        client.files.delete(f.id)


def test_bad_lines_are_reported_with_line_numbers(client):
    good = jsonl(sql_rows(1)).decode()
    lines = [good, "{not json", '{"messages": []}', good,
             '{"messages": [{"role": "user", "content": "only a question"}]}',
             '{"messages": [{"role": "wizard", "content": "x"}]}']
    data = "\n".join(lines).encode()
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, data)
    message = err.value.body["message"]
    assert err.value.code == "invalid_file_format" and err.value.param == "file"
    assert "line 2: not valid JSON" in message
    assert "line 3: missing 'messages'" in message
    assert "line 5: no assistant message" in message
    assert "line 6: messages[0].role must be one of" in message
    assert "line 1" not in message and "line 4" not in message


@pytest.mark.parametrize("data,expected", [
    (b"", "no conversations"),
    (b"\xff\xfe not utf8", "not UTF-8"),
    (b'[1, 2]', "expected a JSON object"),
    (b'{"messages": [{"role": "assistant", "content": 5}]}', "content must be a string"),
])
def test_malformed_files_are_rejected(client, data, expected):
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, data)
    assert expected in err.value.body["message"]


def test_only_fine_tune_purpose_is_accepted(client):
    with pytest.raises(openai.BadRequestError) as err:
        upload(client, jsonl(sql_rows(1)), purpose="assistants")
    assert err.value.param == "purpose"
