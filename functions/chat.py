"""Chat: send, receipts, typing; sessions list, history and transcripts."""

from __future__ import annotations

from functions._http import Call, endpoint
from shared.adapters import runtime
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


@endpoint(post=ChatSend, roles=PARTICIPANTS, response=ChatSent)
def chat_send(call: Call[ChatSend]) -> ChatSent:
    """Send a message in an active session; `client_message_id` makes a retry return the same message."""
    assert call.caller.role is not None and call.caller.account_id is not None
    sent = chat.send(
        runtime.ports(), role=call.caller.role, account_id=call.caller.account_id, uid=call.caller.uid,
        session_id=str(call.body.session_id), client_message_id=str(call.body.client_message_id), text=call.body.text,
    )  # fmt: skip
    return ChatSent.model_validate(sent, from_attributes=True)


@endpoint(post=ChatReceipts, roles=PARTICIPANTS, response=Watermarks)
def chat_receipts(call: Call[ChatReceipts]) -> Watermarks:
    """Delivered/read up to a message; receipts never go back and reach Firestore within ~2 s."""
    assert call.caller.role is not None and call.caller.account_id is not None
    marks = chat.receipts(
        runtime.ports(), role=call.caller.role, account_id=call.caller.account_id, session_id=str(call.body.session_id),
        up_to_message_id=str(call.body.up_to_message_id), receipt=Receipt(call.body.status),
    )  # fmt: skip
    return Watermarks(**marks)


@endpoint(post=ChatTyping, roles=PARTICIPANTS, response=TypingAck)
def chat_typing(call: Call[ChatTyping]) -> TypingAck:
    """Show or clear the typing flag: a lease of 8 s, renewed only once 6 s old; `written` says whether it wrote."""
    assert call.caller.role is not None and call.caller.account_id is not None
    written = chat.typing(
        runtime.ports(), role=call.caller.role, account_id=call.caller.account_id,
        session_id=str(call.body.session_id), is_typing=call.body.typing,
    )  # fmt: skip
    return TypingAck(written=written)


@endpoint(get=SessionsQuery, roles=PARTICIPANTS, response=SessionsPage)
def sessions_list(call: Call[SessionsQuery]) -> SessionsPage:
    """The caller's own sessions, newest first, cursor-paginated."""
    assert call.caller.role is not None and call.caller.account_id is not None
    rows, cursor = chat.list_sessions(
        runtime.database(), role=call.caller.role, account_id=call.caller.account_id, cursor=call.body.cursor,
        limit=call.body.limit,
    )  # fmt: skip
    return SessionsPage(sessions=[SessionSummary.model_validate(row) for row in rows], next_cursor=cursor)


@endpoint(get=HistoryQuery, roles=PARTICIPANTS, response=HistoryPage)
def chat_history(call: Call[HistoryQuery]) -> HistoryPage:
    """Messages of one session, pages going back in time by `seq`."""
    rows, next_before = chat.history(
        runtime.database(), role=call.caller.role, account_id=call.caller.account_id,
        session_id=str(call.body.session_id), before_seq=call.body.before, limit=call.body.limit,
    )  # fmt: skip
    return HistoryPage(messages=[Message.model_validate(row) for row in rows], next_before=next_before)


@endpoint(get=TranscriptQuery, roles={Role.CLIENT, Role.MITRA, Role.ADMIN}, response=Transcript)
def session_transcript(call: Call[TranscriptQuery]) -> Transcript:
    """The whole conversation of one session (participants; admins, audited)."""
    assert call.caller.role is not None
    session, messages = chat.transcript(
        runtime.database(), role=call.caller.role, account_id=call.caller.account_id, uid=call.caller.uid,
        session_id=str(call.body.session_id),
    )  # fmt: skip
    return Transcript(
        session=SessionSummary.model_validate(session), messages=[Message.model_validate(m) for m in messages]
    )
