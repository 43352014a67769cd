\restrict k1
CREATE TABLE t (a int, b text);
COPY public.t (a, b) FROM stdin;
1	it's; here
2	\N
\.
SELECT pg_catalog.setval('s', 3, true);
\unrestrict k1
