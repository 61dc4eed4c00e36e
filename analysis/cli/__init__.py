"""The command line, ``sliceboard`` or ``python -m analysis`` (:mod:`.main`): what
every command shares (:mod:`.output`), how errors are reported (:mod:`.errors`), and one
module per command group (:mod:`.compare`, :mod:`.reports`, :mod:`.valsets`)."""
