"""Storage: the database, its migrations and (in time) every SQL statement Questlog runs."""
