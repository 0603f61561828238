"""What the tests share: a deployment of the project to run, the warehouse's tables and their
checksums, rows built from the contract, servers (PostgreSQL, Redis, Celery, dagster dev), a
webhook receiver, and the process the crash test kills."""
