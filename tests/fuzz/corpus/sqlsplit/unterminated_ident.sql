SELECT "open;
