"""The ``venue`` command: run, demo, operator control, accounts, custody, reports."""
