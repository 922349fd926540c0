"""Data tests from the schema files as asset checks, and the raw tables' freshness."""
