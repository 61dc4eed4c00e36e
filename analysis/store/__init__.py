"""Where the data lives: the database file and its sessions (:mod:`.connection`), the
schema and its migrations (:mod:`.schema`), projects (:mod:`.project`), the scope a view
looks at (:mod:`.scope`), the one quoting of identifiers (:mod:`.sql`), what a write
changed (:mod:`.changes`), read-only mode (:mod:`.access`) and the files written on someone's behalf (:mod:`.paths`)."""
