"""Operations: log cleanup, metadata backup and restore, health checks, failed-run alerts."""
