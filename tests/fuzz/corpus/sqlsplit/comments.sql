-- a comment; with a semicolon
/* block ; /* nested ; */ still */ SELECT 1; -- tail
