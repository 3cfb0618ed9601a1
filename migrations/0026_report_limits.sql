-- Reports' abuse limits (shared.domain.reports): each report pushes every admin on duty, so one side of a session
-- files one report per category (a second is answered the first: `ReportsRepository.add_unless_filed`), and an
-- account at most `reports_per_hour` (app_config) an hour (`report_wait`, counted by `ReportsRepository.recent_by` on the indexes
-- below). Reports came with migration 0024 in the same release, so no earlier duplicates stand in this index's way.
-- Per pair: a session an admin rerouted to another mitra is another pair, whose reports are their own.
CREATE UNIQUE INDEX reports_once_per_session_side_category
    ON reports (session_id, reporter_role, category, client_id, mitra_id);
CREATE INDEX reports_by_reporting_client ON reports (client_id, created_at) WHERE reporter_role = 'client';
CREATE INDEX reports_by_reporting_mitra ON reports (mitra_id, created_at) WHERE reporter_role = 'mitra';

INSERT INTO app_config (key, value) VALUES ('reports_per_hour', '10') ON CONFLICT (key) DO NOTHING;
