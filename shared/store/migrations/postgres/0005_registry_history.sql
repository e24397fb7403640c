-- Registry history: when an agency is in service (yyyy/MM/dd, inclusive), and the agency that
-- took over its documents when it was merged or retired.
ALTER TABLE agencies ADD COLUMN valid_from TEXT;
ALTER TABLE agencies ADD COLUMN valid_to TEXT;
ALTER TABLE agencies ADD COLUMN successor TEXT;
