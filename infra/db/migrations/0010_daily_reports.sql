-- Daily usage reports (issue 17): a busy support team wants yesterday's figures every morning.
ALTER TABLE report_settings DROP CONSTRAINT report_settings_cadence_check;
ALTER TABLE report_settings ADD CONSTRAINT report_settings_cadence_check
    CHECK (cadence IN ('daily', 'weekly', 'monthly'));
ALTER TABLE reports DROP CONSTRAINT reports_cadence_check;
ALTER TABLE reports ADD CONSTRAINT reports_cadence_check CHECK (cadence IN ('daily', 'weekly', 'monthly'));
