"""One turn of a conversation: the inbound event being handled and what answering needs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from services.chat_agent.conversation.state import SENTIMENT_MEMORY, ConversationState
from services.chat_agent.delivery import queue
from services.chat_agent.line import messages
from services.chat_agent.line.events import LineEvent
from services.chat_agent.linking.tokens import LinkStart
from services.chat_agent.models import PRODUCER, Customer, Outbox
from services.chat_agent.persona import Persona, tone_for
from shared.events import Language, Strict
from shared.outbox import add_event


@dataclass(frozen=True)
class Pacing:
    """How long an answer may wait."""

    # A reply token lasts about a minute; past this the offer is pushed instead.
    reply_window_s: float = 50.0
    # How long a follow greeting waits for its offer before it is sent on its own.
    hold_s: float = 20.0
    # A follow within this long of a follow that asked for an offer asks for none.
    refollow_offer_s: float = 30 * 86400.0


@dataclass
class Turn:
    """One inbound event being handled, inside its DB transaction."""

    session: Session
    customer: Customer
    event: LineEvent
    event_id: uuid.UUID
    state: ConversationState
    now: datetime
    language: Language
    persona: Persona
    pacing: Pacing
    intent: str | None = None
    sentiment: float | None = None
    sent: int = 0
    # A link token asked of the platform for this turn, when the customer wants to link.
    link_start: LinkStart | None = None

    @property
    def event_time(self) -> datetime:
        return datetime.fromtimestamp(self.event.timestamp / 1000, UTC)

    @property
    def reply_deadline(self) -> datetime:
        """Until when the event's reply token may be used."""
        return min(self.event_time, self.now) + timedelta(seconds=self.pacing.reply_window_s)

    @property
    def mood(self) -> float:
        """The session's sentiment with this message folded in."""
        if self.sentiment is None:
            return self.state.sentiment
        return SENTIMENT_MEMORY * self.state.sentiment + (1 - SENTIMENT_MEMORY) * self.sentiment

    def line(self, kind: str, **placeholders: object) -> str:
        """A persona line in the customer's language and a tone that follows their mood."""
        tone = tone_for(self.mood)
        return self.persona.line(kind, self.language, tone, str(self.event_id), **placeholders)

    def quick_replies(self) -> list[dict[str, Any]]:
        return messages.quick_reply_items(
            self.persona.quick_replies(self.language), opted_out=self.customer.opted_out
        )

    def reply(self, kind: str, lines: list[str]) -> None:
        """Answer with persona lines (reply API while the token is fresh, else push)."""
        self.send(kind, [messages.text(line) for line in lines])

    def send(self, kind: str, batch: list[messages.Message]) -> None:
        if not self.customer.followed:
            return  # a customer who blocked the account cannot be messaged
        queue.enqueue(
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

    def announce(self, event_type: str, payload: Strict) -> None:
        """Write a customer event to the outbox, in this turn's transaction."""
        add_event(
            self.session,
            Outbox,
            event_type,
            payload,
            key=self.customer.customer_id,
            producer=PRODUCER,
        )
