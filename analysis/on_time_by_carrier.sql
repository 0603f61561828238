-- Each carrier's on-time rate (arrived within 15 minutes) and flights, month by month, from the
-- published marts. Run it, while a load runs too:
--   .venv/bin/etl-assets query --file analysis/on_time_by_carrier.sql
-- or open the file in any DuckDB client (read-only): the tables are marts.<name>.
SELECT
    carrier,
    any_value(carrier_name) AS carrier_name,
    date_trunc('month', flight_date)::DATE AS month,
    sum(flights) AS flights,
    round(
        sum(on_time_rate * (flights - cancelled - diverted))
            / nullif(sum(flights - cancelled - diverted), 0),
        3
    ) AS on_time_rate
FROM marts.carrier_daily_performance
GROUP BY carrier, month
ORDER BY month, carrier
