"""PostgreSQL: the connection pool, the unit of work, and one repository per area holding that area's SQL."""
