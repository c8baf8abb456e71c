#!/usr/bin/python3
"""Print a batch's results (the JSON of GET /batches/{id}/results on stdin) as a table."""
import json
import sys

results = json.load(sys.stdin)["results"]
print(f"{'run':>4} {'ok':>3} {'secs':>6}  summary")
for result in sorted(results, key=lambda r: int(r["metadata"]["run_id"])):
    text = result["error_message"] or ""
    summary = next((f for f in result["output_files"] if f.endswith("summary.json")), None)
    if summary:
        with open(summary) as source:
            data = json.load(source)
        text = f"range {data['range_m']:8.1f} m  apex {data['apex_m']:7.1f} m"
    ok = "yes" if result["success"] else "NO"
    print(f"{result['metadata']['run_id']:>4} {ok:>3} {result['execution_time_secs']:6.2f}  {text}")
