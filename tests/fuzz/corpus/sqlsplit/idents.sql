CREATE TABLE "we;ird""name" ("col;1" int);
SELECT "x""";
