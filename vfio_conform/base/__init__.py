"""Names and places every layer shares (constants, exit codes, extension groups, the harness build),
the error taxonomy, the one writer of output files, and the Debian package fetcher. Above the uAPI
tables and the model only because `SpecViolation` quotes the rule catalogue."""
