"""The ground floor every layer stands on: names and places, exit codes, errors, output files, extension groups."""
