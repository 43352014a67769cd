SELECT 1; /* /* */ 
