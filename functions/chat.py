"""Chat: send, receipts, typing; sessions list, history and transcripts."""

from __future__ import annotations

from typing import Any

from functions._http import Call, endpoint
from shared import bootstrap
from shared.domain.chat import Receipt
from shared.domain.roles import Role
from shared.schemas.chat import (
    ChatReceipts,
    ChatSend,
    ChatSent,
    ChatTyping,
    HistoryPage,
    HistoryQuery,
    Message,
    SessionsPage,
    SessionsQuery,
    SessionSummary,
    Transcript,
    TranscriptQuery,
    TypingAck,
    Watermarks,
)
from shared.services import chat

PARTICIPANTS = {Role.CLIENT, Role.MITRA}


@endpoint(post=ChatSend, roles=PARTICIPANTS, response=ChatSent, errors={404, 409, 429})
def chat_send(call: Call[ChatSend]) -> ChatSent:
    """Send a message in an active session; `client_message_id` makes a retry return the same message."""
    body = call.body
    sent = chat.send(
        bootstrap.ports(),
        call.caller.participant(),
        session_id=str(body.session_id),
        client_message_id=str(body.client_message_id),
        text=body.text,
    )
    return ChatSent.model_validate(sent, from_attributes=True)


@endpoint(post=ChatReceipts, roles=PARTICIPANTS, response=Watermarks, errors={404})
def chat_receipts(call: Call[ChatReceipts]) -> Watermarks:
    """Delivered/read up to a message; receipts never go back and reach Firestore within ~2 s."""
    body = call.body
    marks = chat.receipts(
        bootstrap.ports(),
        call.caller.participant(),
        session_id=str(body.session_id),
        up_to_message_id=str(body.up_to_message_id),
        receipt=Receipt(body.status),
    )
    return Watermarks(**marks)


@endpoint(post=ChatTyping, roles=PARTICIPANTS, response=TypingAck, errors={404})
def chat_typing(call: Call[ChatTyping]) -> TypingAck:
    """Show or clear the typing flag: a lease of 8 s, renewed only once 6 s old; `written` says whether it wrote."""
    written = chat.typing(
        bootstrap.ports(), call.caller.participant(), session_id=str(call.body.session_id), is_typing=call.body.typing
    )
    return TypingAck(written=written, renew_after_s=chat.TYPING_RENEW_AFTER_S)


@endpoint(get=SessionsQuery, roles=PARTICIPANTS, response=SessionsPage)
def sessions_list(call: Call[SessionsQuery]) -> SessionsPage:
    """The caller's own sessions, newest first, cursor-paginated."""
    rows, cursor = chat.list_sessions(
        bootstrap.ports(), call.caller.participant(), cursor=call.body.cursor, limit=call.body.limit
    )
    return SessionsPage(sessions=[SessionSummary.model_validate(row) for row in rows], next_cursor=cursor)


@endpoint(get=HistoryQuery, roles=PARTICIPANTS, response=HistoryPage, errors={404})
def chat_history(call: Call[HistoryQuery]) -> HistoryPage:
    """Messages of one session, pages going back in time by `seq`."""
    rows, next_before = chat.history(
        bootstrap.ports(),
        _reader(call),
        session_id=str(call.body.session_id),
        before_seq=call.body.before,
        limit=call.body.limit,
    )
    return HistoryPage(messages=[Message.model_validate(row) for row in rows], next_before=next_before)


@endpoint(get=TranscriptQuery, roles=PARTICIPANTS, response=Transcript, errors={404})
def session_transcript(call: Call[TranscriptQuery]) -> Transcript:
    """The whole conversation of one session, for its participants (an admin reads it through
    `admin_session_transcript`, with a reason, audited)."""
    session, messages = chat.transcript(bootstrap.ports(), _reader(call), session_id=str(call.body.session_id))
    return Transcript(
        session=SessionSummary.model_validate(session), messages=[Message.model_validate(m) for m in messages]
    )


def _reader(call: Call[Any]) -> chat.Reader:
    return chat.Reader(role=call.caller.role, account_id=call.caller.account_id, uid=call.caller.uid)
