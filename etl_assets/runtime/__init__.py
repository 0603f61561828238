"""What the code location runs on: resources, the alert sink, executors, the event log, paths,
and the adapter that holds every Dagster name 1.13 does not make public."""
