-- Cloud Tasks are created after the commit, like every other side effect: the outbox carries them (kind 'task',
-- destination the queue, payload the task's name, handler, payload and time). A Tasks outage then delays a timer
-- instead of refusing the change that set it.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('firestore', 'pubsub', 'task'));
