-- An admin settles a quarantined callback through admin_payment_events: what was done, in their words.
ALTER TABLE payment_events ADD COLUMN review_note text;
