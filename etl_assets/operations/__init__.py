"""The command line and what it runs (`etl-assets run`, report, demo, soak); the code location
never imports this package."""
