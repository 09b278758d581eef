"""What both faces of the local API front share: a reply, and the local account's names."""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_ACCOUNT_ID = "000000000000"
LOCAL_REGION = "us-east-1"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
