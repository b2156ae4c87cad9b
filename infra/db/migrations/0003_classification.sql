-- Classification (issue 4): the listing filter on user corrections gets its own partial index, so
-- "show me what people corrected" stays a short keyset scan however many threads are auto-labelled.
CREATE INDEX threads_project_user_labelled_idx ON threads (project_id, created_at DESC, id DESC)
    WHERE label_source = 'user';
