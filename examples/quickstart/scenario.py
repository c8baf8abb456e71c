#!/usr/bin/python3
"""Quickstart scenario: a drag-affected projectile, integrated with fixed-step RK4.

It follows the whole Lynx scenario contract: read the sampled parameters from the file named
by TETRYX_RUN_CONFIG, write artifacts to TETRYX_OUTPUT_DIR, exit 0 on success.
"""
import json
import math
import os
import sys
from pathlib import Path

run_config = json.loads(Path(os.environ["TETRYX_RUN_CONFIG"]).read_text())
params = run_config["parameters"]
speed = float(params["launch_speed_m_s"])
angle = math.radians(float(params["launch_angle_deg"]))
cd = float(params["drag_coefficient"])
mass = float(params["mass_kg"])

rho, area, g, dt = 1.225, 0.01, 9.80665, 0.001
k = 0.5 * rho * cd * area / mass


def accel(vx, vy):
    v = math.hypot(vx, vy)
    return -k * v * vx, -g - k * v * vy


x, y, vx, vy, t = 0.0, 0.0, speed * math.cos(angle), speed * math.sin(angle), 0.0
apex = 0.0
while y >= 0.0:
    ax1, ay1 = accel(vx, vy)
    ax2, ay2 = accel(vx + 0.5 * dt * ax1, vy + 0.5 * dt * ay1)
    ax3, ay3 = accel(vx + 0.5 * dt * ax2, vy + 0.5 * dt * ay2)
    ax4, ay4 = accel(vx + dt * ax3, vy + dt * ay3)
    x += dt * (vx + dt / 6 * (ax1 + ax2 + ax3))
    y += dt * (vy + dt / 6 * (ay1 + ay2 + ay3))
    vx += dt / 6 * (ax1 + 2 * ax2 + 2 * ax3 + ax4)
    vy += dt / 6 * (ay1 + 2 * ay2 + 2 * ay3 + ay4)
    t += dt
    apex = max(apex, y)
    if t > 600:
        print("projectile never landed", file=sys.stderr)
        sys.exit(2)

summary = {"run_id": run_config["run_id"], "range_m": round(x, 3), "apex_m": round(apex, 3),
           "flight_time_s": round(t, 3), "parameters": params}
Path(os.environ["TETRYX_OUTPUT_DIR"], "summary.json").write_text(json.dumps(summary, indent=2))
print(f"run {run_config['run_id']}: range {x:.1f} m, apex {apex:.1f} m, flight {t:.2f} s")
