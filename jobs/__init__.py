"""Background work: the scheduler, the run workers, the agent loop and the outbox."""
