"""Getting logs in: reading sources (:mod:`.sources`), the column mapping
(:mod:`.mapping`, guessed by :mod:`.guess_columns`), converting and checking values
(:mod:`.convert`, :mod:`.class_labels`, :mod:`.headers`), writing predictions
(:mod:`.predictions`) and late labels (:mod:`.labels`), the slow part outside the lock
(:mod:`.staging`), and Parquet datasets read in place (:mod:`.external`)."""
