-- Exact-data-match counts on findings: the most known customers recognised
-- in one outbound event of the incident, and how many of them the actor had
-- read from the CRM within the look-back. One statement, so the migration is
-- all or nothing.
ALTER TABLE {db}.findings
    ADD COLUMN edm_customers UInt32 DEFAULT 0,
    ADD COLUMN edm_read_by_actor UInt32 DEFAULT 0
