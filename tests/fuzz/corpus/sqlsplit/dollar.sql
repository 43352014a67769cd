DO $$ BEGIN RAISE NOTICE 'a;b'; END $$;
CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$
BEGIN
  RETURN 1; -- $$ inside
END
$body$;
SELECT $1, a$b, $tag$x$tag$;
