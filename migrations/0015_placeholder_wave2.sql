-- Placeholder: this number belongs to another wave-2 branch (migrations are numbered without gaps). Drop this
-- file when that branch's migration lands.
SELECT 1;
