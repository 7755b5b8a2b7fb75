"""Layer and network measurements: ingest, history, current values, listing and export."""
