#!/usr/bin/env python3
"""Wait until PostgreSQL accepts a connection (the official odoo image's helper, same options)."""

import argparse
import sys
import time

import psycopg2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db_host", required=True)
    parser.add_argument("--db_port", required=True)
    parser.add_argument("--db_user", required=True)
    parser.add_argument("--db_password", required=True)
    parser.add_argument("--timeout", type=int, default=5, help="seconds to wait")
    args = parser.parse_args()

    deadline = time.monotonic() + args.timeout
    error = ""
    while True:
        try:
            psycopg2.connect(
                user=args.db_user,
                host=args.db_host,
                port=args.db_port,
                password=args.db_password,
                dbname="postgres",
            ).close()
            return 0
        except psycopg2.OperationalError as exc:
            error = str(exc).strip()
        if time.monotonic() >= deadline:
            print(f"Database connection failure: {error}", file=sys.stderr)
            return 1
        time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())
