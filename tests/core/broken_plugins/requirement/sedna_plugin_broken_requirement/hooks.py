"""Never imported: its distribution requires a package that is not installed (``unavailable``)."""

raise AssertionError("the requirement check must stop this module from being imported")
