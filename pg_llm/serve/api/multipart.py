"""Parses multipart/form-data bodies (file uploads) with the standard library's email parser,
so the engine needs no extra dependency for POST /v1/files."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser


class FormField:
    def __init__(self, value: bytes, filename: str | None):
        self.value = value
        self.filename = filename

    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


def parse_form(content_type: str, body: bytes) -> dict[str, FormField]:
    if not content_type.lower().startswith("multipart/form-data"):
        raise ValueError("expected a multipart/form-data body")
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ValueError("malformed multipart/form-data body")
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = FormField(part.get_payload(decode=True) or b"", part.get_filename())
    return fields
