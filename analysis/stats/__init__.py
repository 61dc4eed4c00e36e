"""The statistics every analysis shares, in one place: intervals of one sample
(:mod:`.intervals`), tests of two (:mod:`.tests`: a slice in two versions, unpaired or
paired), and false-discovery control over many (:mod:`.multiple_testing`). Each is
checked against scipy or statsmodels on random inputs in the tests."""
