SELECT 1;
DO $fn$ BEGIN NULL; END $other$;
