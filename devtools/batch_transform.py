"""What SageMaker Batch Transform does to an input file, for the tests and bench_transform.

It follows the Batch Transform guide: with ``SplitType=Line`` each line is a record; with
``BatchStrategy=MultiRecord`` a request holds as many whole records as fit in
``MaxPayloadInMB``, with ``SingleRecord`` one; ``MaxConcurrentTransforms`` requests are open
at once; with ``AssembleWith=Line`` the answers are joined, in input order, one per line.
The payload limit is taken in MiB, the larger reading of "MB", as the server takes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import httpx

MIB = 1024 * 1024


def payloads(lines: Sequence[bytes], max_payload_bytes: int, multi_record: bool) -> Iterator[bytes]:
    """The request bodies: whole lines (each with its line break) up to ``max_payload_bytes``."""
    batch: list[bytes] = []
    size = 0
    for line in lines:
        record = line + b"\n"
        if len(record) > max_payload_bytes:
            raise ValueError("a record is larger than MaxPayloadInMB (the job would fail)")
        if batch and (not multi_record or size + len(record) > max_payload_bytes):
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(record)
        size += len(record)
    if batch:
        yield b"".join(batch)


def transform(
    url: str,
    lines: Sequence[bytes],
    *,
    content_type: str,
    accept: str,
    max_payload_bytes: int,
    multi_record: bool = True,
    concurrent: int = 1,
    custom_attributes: str = "",
    timeout_s: float = 600.0,
) -> tuple[list[bytes], int]:
    """Post ``lines`` to ``url``'s ``/invocations`` as a transform job would: the joined
    output lines and the number of requests. Any answer but 200 raises (the job fails)."""
    headers = {"Content-Type": content_type, "Accept": accept}
    if custom_attributes:
        headers["X-Amzn-SageMaker-Custom-Attributes"] = custom_attributes
    bodies = list(payloads(lines, max_payload_bytes, multi_record))
    with httpx.Client(base_url=url, timeout=timeout_s) as client:

        def post(body: bytes) -> bytes:
            response = client.post("/invocations", content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
            return response.content

        with ThreadPoolExecutor(max_workers=concurrent) as pool:
            answers = list(pool.map(post, bodies))  # in payload order, as AssembleWith joins
    out: list[bytes] = []
    for answer in answers:
        out.extend(answer.removesuffix(b"\n").split(b"\n"))
    return out, len(bodies)
