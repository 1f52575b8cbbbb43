"""Developer tooling for the embedded local AWS. Nothing in the library imports it."""
