"""Which engine answers the read-side analyses: a project's engine settings and the
connection they give (:mod:`.settings`), Apache Spark (:mod:`.spark`) and the translation
of the engine's DuckDB SQL for it (:mod:`.portable`)."""
