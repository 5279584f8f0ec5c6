"""Activation and transaction ids."""

import re
import uuid

_ACTIVATION_ID = re.compile(r"\A[0-9a-f]{32}\Z")


def new_activation_id() -> str:
    """32 lowercase hex characters, as OpenWhisk's."""
    return uuid.uuid4().hex


def is_activation_id(text: str) -> bool:
    return bool(_ACTIVATION_ID.match(text))


def new_transaction_id() -> str:
    return uuid.uuid4().hex
