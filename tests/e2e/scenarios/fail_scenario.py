#!/usr/bin/python3
"""A scenario that fails the way a diverging simulation would: a message on stderr and exit
status 1. Tests check that the runner reports both in the job's error_message."""

import sys


def main():
    print("fail_scenario: starting", flush=True)
    print("simulated divergence at t=12.5", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
