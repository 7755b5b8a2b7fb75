"""Device agents: profile layer variants on hosts and on Android phones."""
