SELECT E'\\';
SELECT $a$$a$;
SELECT $$$$;
