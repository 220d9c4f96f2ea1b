"""The interface between the dispatcher and the messengers.

A `ChannelSender` delivers one message and says how it failed: `TransientSendError` (HTTP 429,
5xx, timeouts, connection errors: worth retrying, with the server's `retry_after` when it gave
one) or `PermanentSendError` (400, 403 "bot was blocked by the user", chat not found: retrying
cannot help). The dispatcher has judged the message with the gate before it calls `send`;
adapters translate, they never decide (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Delivery:
    """One message the gate allowed, ready for a messenger.

    `external_id` is the client's id on the channel (the Telegram chat id). Rows for staff
    (channel "slack": lead cards, case cards) carry the external id of the client they are
    about; the Slack adapter chooses the Slack channel by `kind`.
    """

    outbox_id: int
    client_id: int
    channel: str
    external_id: str
    text: str
    #: Inline buttons: (label, callback data) pairs.
    buttons: tuple[tuple[str, str], ...]
    kind: str
    #: Stable across retries of the same row: adapters that can deduplicate use it.
    dedupe_key: str = ""
    #: 1 for the first attempt; a retry, or a resend after a crashed worker, has a higher one.
    attempt: int = 1


@dataclass(frozen=True)
class SentReceipt:
    """What the messenger answered to a successful send."""

    #: The platform's id of the message sent (Telegram message_id, Slack ts), when it gave one.
    message_id: str | None = None


class SendError(Exception):
    """A send that did not happen."""


class TransientSendError(SendError):
    """A send that may succeed later: rate limited, server error, timeout."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: Seconds the server asked us to wait (Telegram `parameters.retry_after`).
        self.retry_after = retry_after


class PermanentSendError(SendError):
    """A send that will never succeed: bad request, bot blocked, chat gone."""


class ChannelSender(Protocol):
    """Sends messages on one channel (Telegram, Slack)."""

    async def send(self, delivery: Delivery) -> SentReceipt:
        """Deliver one message; raise `TransientSendError` or `PermanentSendError` on failure."""
        ...
