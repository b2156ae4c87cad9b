-- A backfill's outcome counts threads by their state at the end, not by its plan (issue 17): threads of its
-- scope still unlabelled when it finished (an import adding threads while it ran, a thread the classifier
-- could not place). `incomplete`: every range ran, yet some remain; never `succeeded` while any do.
ALTER TABLE backfills ADD COLUMN threads_unlabelled integer;
ALTER TABLE backfills DROP CONSTRAINT backfills_state_check;
ALTER TABLE backfills ADD CONSTRAINT backfills_state_check
    CHECK (state IN ('running', 'succeeded', 'incomplete', 'failed', 'stopped'));
