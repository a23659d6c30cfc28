"""What every chat handler works with: its dependencies (`Chat`) and one turn (`Turn`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.chat_agent import delivery, messages
from services.chat_agent.conversation import SENTIMENT_MEMORY, ConversationState
from services.chat_agent.line_events import LineEvent
from services.chat_agent.models import Campaign, Customer
from services.chat_agent.persona import Persona, tone_for
from shared.config import Settings
from shared.db import utcnow

PRODUCER = "chat_agent"


class ConversationStore(Protocol):
    def current(self, customer_id: str, now: float) -> ConversationState: ...

    def save(self, customer_id: str, state: ConversationState) -> None: ...

    def forget(self, customer_id: str) -> None: ...

    def sweep(self, now: float, limit: int = 500) -> int: ...


class Understands(Protocol):
    def understand(self, text: str, language_hint: str | None = None) -> Any: ...


def _no_kick() -> None:
    return None


@dataclass
class Chat:
    """The handlers' dependencies, wired once by `bootstrap`."""

    settings: Settings
    sessions: Callable[[], Session]
    conversations: ConversationStore
    understanding: Understands
    persona: Persona
    clock: Callable[[], datetime] = utcnow
    kick: Callable[[], None] = _no_kick
    # A reply token lasts about a minute; past this the offer is pushed instead.
    reply_window_s: float = 50.0
    # How long a follow greeting waits for its offer before it is sent on its own.
    hold_s: float = 20.0


@dataclass
class Turn:
    """One inbound event being handled, inside its DB transaction."""

    chat: Chat
    session: Session
    customer: Customer
    event: LineEvent
    event_id: uuid.UUID
    state: ConversationState
    now: datetime
    language: str
    intent: str | None = None
    sentiment: float | None = None
    sent: int = field(default=0)

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.event.timestamp / 1000, UTC)

    @property
    def reply_deadline(self) -> datetime:
        """Until when the event's reply token may be used."""
        return min(self.event_time, self.now) + timedelta(seconds=self.chat.reply_window_s)

    @property
    def mood(self) -> float:
        """The session's sentiment with this message folded in."""
        if self.sentiment is None:
            return self.state.sentiment
        return SENTIMENT_MEMORY * self.state.sentiment + (1 - SENTIMENT_MEMORY) * self.sentiment

    def line(self, kind: str, **placeholders: object) -> str:
        """A persona line in the customer's language and a tone that follows their mood."""
        tone = tone_for(self.mood)
        return self.chat.persona.line(kind, self.language, tone, str(self.event_id), **placeholders)

    def quick_replies(self) -> list[dict[str, Any]]:
        return messages.quick_reply_items(
            self.chat.persona.quick_replies(self.language), opted_out=self.customer.opted_out
        )

    def reply(self, kind: str, lines: list[str]) -> None:
        """Answer with persona lines (reply API while the token is fresh, else push)."""
        self.send(kind, [messages.text(line) for line in lines])

    def send(self, kind: str, batch: list[messages.Message]) -> None:
        if not self.customer.followed:
            return  # a customer who blocked the account cannot be messaged
        delivery.enqueue(
            self.session,
            customer_id=self.customer.customer_id,
            line_user_id=self.customer.line_user_id,
            kind=kind,
            messages=messages.with_quick_replies(batch, self.quick_replies()),
            reply_token=self.event.reply_token,
            reply_deadline=self.reply_deadline,
            now=self.now,
        )
        self.sent += 1


def campaign_active(session: Session, now: datetime) -> bool:
    """True when chat_agent's copy of the campaigns has one running now."""
    row = session.execute(
        select(Campaign.campaign_id)
        .where(Campaign.status == "active", Campaign.starts_at <= now, Campaign.ends_at > now)
        .limit(1)
    ).first()
    return row is not None


def tone_of(chat: Chat, customer_id: str, now: datetime) -> str:
    """The tone for a message the clerk sends unprompted (the mood of the last session)."""
    state = chat.conversations.current(customer_id, now.timestamp())
    return tone_for(state.sentiment)
