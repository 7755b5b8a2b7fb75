"""The profiling job queue: agents claim jobs with a lease, heartbeat, complete or fail."""
