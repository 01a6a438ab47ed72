"""The tabs of a smith's page, one module each (deployments, schedules, memory)."""
