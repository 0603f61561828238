"""The assets: raw, clean and marts tables, the checks and the daily partitions they own."""
