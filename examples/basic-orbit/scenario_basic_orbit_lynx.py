#!/usr/bin/python3
"""Basic orbit tutorial scenario (lynx-docs/tutorial-basic-orbit.txt) without Basilisk.

Reads the seven orbital parameters of the tutorial from TETRYX_RUN_CONFIG, converts the
classical elements to an Earth-centred inertial state, propagates it with fixed-step RK4
(two-body + J2, optional drag), streams the six orbit.* variables of the tutorial every 10 s of
simulation time through lynx_telemetry_client (timestamp_ns = simulation time), and writes
summary.json, trajectory.csv and orbit_position.png to TETRYX_OUTPUT_DIR.

Exit status: 0 on success; 2 on a bad run configuration; 3 on an impact (the radius fell below
Earth's mean radius, 6371 km). On an impact the crossing frame is streamed first and, when a
runner listens, the scenario waits a short grace (LYNX_ORBIT_IMPACT_GRACE_SECS, default 2 s)
before exiting, so an early-termination rule on orbit.radius_km ends the job, not the exit code.

Optional parameters (from the run config, or the environment where named):
  j2_enabled            1/0, default 1 (env LYNX_ORBIT_J2)
  ballistic_coefficient kg/m^2 (m / (Cd A)); enables drag
  drag_coefficient      Cd; enables drag with area_m2 (default 1.0) and mass_kg (default 100)
  step_seconds          output/telemetry step, default 10 (env LYNX_ORBIT_STEP_SECS)
  substeps              RK4 steps per output step, default 1
"""
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

MU = 3.986004418e14  # m^3/s^2
R_EARTH = 6378137.0  # equatorial radius for J2, m
R_IMPACT = 6371000.0  # mean radius: below it the orbit has decayed, m
J2 = 1.08262668e-3
OMEGA_EARTH = 7.2921159e-5  # rad/s
EXIT_CONFIG, EXIT_IMPACT = 2, 3


def fail(status, message):
    print(f"scenario_basic_orbit_lynx: {message}", file=sys.stderr)
    sys.exit(status)


def elements_to_state(a, e, i, raan, argp, f):
    """Classical elements (m, -, rad) to ECI position and velocity."""
    p = a * (1.0 - e * e)
    r_pf = p / (1.0 + e * math.cos(f)) * np.array([math.cos(f), math.sin(f), 0.0])
    v_pf = math.sqrt(MU / p) * np.array([-math.sin(f), e + math.cos(f), 0.0])
    cO, sO, ci, si, cw, sw = (math.cos(raan), math.sin(raan), math.cos(i), math.sin(i),
                              math.cos(argp), math.sin(argp))
    rot = np.array([
        [cO * cw - sO * sw * ci, -cO * sw - sO * cw * ci, sO * si],
        [sO * cw + cO * sw * ci, -sO * sw + cO * cw * ci, -cO * si],
        [sw * si, cw * si, ci],
    ])
    return rot @ r_pf, rot @ v_pf


def state_to_elements(r, v):
    """Osculating a (m), e, i (deg), true anomaly (deg) of an ECI state."""
    rn, vn = float(np.linalg.norm(r)), float(np.linalg.norm(v))
    h = np.cross(r, v)
    hn = float(np.linalg.norm(h))
    e_vec = np.cross(v, h) / MU - r / rn
    e = float(np.linalg.norm(e_vec))
    energy = 0.5 * vn * vn - MU / rn
    a = -MU / (2.0 * energy) if energy != 0.0 else math.inf
    inc = math.degrees(math.acos(max(-1.0, min(1.0, h[2] / hn))))
    if e > 1e-10:
        f = math.acos(max(-1.0, min(1.0, float(np.dot(e_vec, r)) / (e * rn))))
        if float(np.dot(r, v)) < 0.0:
            f = 2.0 * math.pi - f
    else:  # circular: the argument of latitude stands in for the true anomaly
        node = np.array([-h[1], h[0], 0.0])
        nn = float(np.linalg.norm(node))
        ref = node / nn if nn > 1e-9 else np.array([1.0, 0.0, 0.0])
        f = math.acos(max(-1.0, min(1.0, float(np.dot(ref, r)) / rn)))
        if r[2] < 0.0:
            f = 2.0 * math.pi - f
    return a, e, inc, math.degrees(f)


def density(altitude_m):
    """A crude exponential thermosphere: 3e-12 kg/m^3 at 400 km, 58 km scale height."""
    return 3.0e-12 * math.exp(-(altitude_m - 400e3) / 58e3)


def make_accel(j2_on, inv_ballistic):
    def accel(r, v):
        x, y, z = r
        r2 = x * x + y * y + z * z
        rn = math.sqrt(r2)
        acc = -MU / (r2 * rn) * r
        if j2_on:
            k = 1.5 * J2 * MU * R_EARTH * R_EARTH / (r2 * r2 * rn)
            zz = 5.0 * z * z / r2
            acc = acc + k * np.array([x * (zz - 1.0), y * (zz - 1.0), z * (zz - 3.0)])
        if inv_ballistic > 0.0:
            v_rel = v - np.array([-OMEGA_EARTH * y, OMEGA_EARTH * x, 0.0])
            acc = acc - 0.5 * density(rn - R_IMPACT) * inv_ballistic * \
                float(np.linalg.norm(v_rel)) * v_rel
        return acc
    return accel


def rk4(accel, r, v, dt):
    a1 = accel(r, v)
    r2, v2 = r + 0.5 * dt * v, v + 0.5 * dt * a1
    a2 = accel(r2, v2)
    r3, v3 = r + 0.5 * dt * v2, v + 0.5 * dt * a2
    a3 = accel(r3, v3)
    r4, v4 = r + dt * v3, v + dt * a3
    a4 = accel(r4, v4)
    return (r + dt / 6.0 * (v + 2.0 * v2 + 2.0 * v3 + v4),
            v + dt / 6.0 * (a1 + 2.0 * a2 + 2.0 * a3 + a4))


def orbit_values(r, v):
    a, e, inc, f = state_to_elements(r, v)
    return {
        "orbit.radius_km": float(np.linalg.norm(r) / 1000.0),
        "orbit.speed_m_s": float(np.linalg.norm(v)),
        "orbit.semi_major_axis_km": float(a / 1000.0),
        "orbit.eccentricity": float(e),
        "orbit.inclination_deg": float(inc),
        "orbit.true_anomaly_deg": float(f),
    }


def write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def write_trajectory(path, times, states):
    rows = ["t,x,y,z,vx,vy,vz"]
    for t, s in zip(times, states):
        rows.append(f"{t:.1f}," + ",".join(f"{c:.6f}" for c in s))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(rows) + "\n")
    tmp.replace(path)


def write_plot(path, times, states, period, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.asarray(times) / period
    pos = np.asarray(states)[:, :3] / 1000.0
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=80)
    for k, label in enumerate(("x", "y", "z")):
        ax.plot(t, pos[:, k], label=label)
    ax.set_xlabel("time [orbits]")
    ax.set_ylabel("inertial position [km]")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def param(params, name, default=None):
    value = params.get(name, default)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        fail(EXIT_CONFIG, f"parameter {name} is not a number: {value!r}")
    if not math.isfinite(value):
        fail(EXIT_CONFIG, f"parameter {name} is not finite: {value!r}")
    return value


def main():
    started = time.monotonic()
    config_path = os.environ.get("TETRYX_RUN_CONFIG")
    if not config_path:
        fail(EXIT_CONFIG, "TETRYX_RUN_CONFIG is not set")
    try:
        run_config = json.loads(Path(config_path).read_text())
    except (OSError, ValueError) as exc:
        fail(EXIT_CONFIG, f"cannot read the run config {config_path}: {exc}")
    out_dir = Path(os.environ.get("TETRYX_OUTPUT_DIR", "."))
    out_dir.mkdir(parents=True, exist_ok=True)
    run_id = int(run_config.get("run_id", 0))
    params = run_config.get("parameters") or {}
    metadata = run_config.get("metadata") or {}

    a = param(params, "semi_major_axis_m", 7_000_000.0)
    e = param(params, "eccentricity", 0.0001)
    inc = param(params, "inclination_deg", 33.3)
    raan = param(params, "raan_deg", 48.2)
    argp = param(params, "arg_perigee_deg", 347.8)
    f0 = param(params, "true_anomaly_deg", 85.3)
    orbits = param(params, "duration_orbits", 0.75)
    if a <= R_IMPACT * 0.5 or not 0.0 <= e < 1.0 or orbits <= 0.0:
        fail(EXIT_CONFIG, f"not a closed orbit: semi_major_axis_m={a} eccentricity={e} "
                          f"duration_orbits={orbits}")

    j2_on = bool(param(params, "j2_enabled", float(os.environ.get("LYNX_ORBIT_J2", "1"))))
    inv_b = 0.0
    ballistic = param(params, "ballistic_coefficient")
    cd = param(params, "drag_coefficient")
    if ballistic is not None and ballistic > 0.0:
        inv_b = 1.0 / ballistic
    elif cd is not None and cd > 0.0:
        inv_b = cd * param(params, "area_m2", 1.0) / param(params, "mass_kg", 100.0)
    step = param(params, "step_seconds", float(os.environ.get("LYNX_ORBIT_STEP_SECS", "10")))
    substeps = max(1, int(param(params, "substeps", 1.0)))
    grace = float(os.environ.get("LYNX_ORBIT_IMPACT_GRACE_SECS", "2.0"))

    period = 2.0 * math.pi * math.sqrt(a ** 3 / MU)
    duration = orbits * period
    n_steps = max(1, math.ceil(duration / step - 1e-9))
    r, v = elements_to_state(a, e, math.radians(inc), math.radians(raan), math.radians(argp),
                             math.radians(f0))
    accel = make_accel(j2_on, inv_b)

    from lynx_telemetry_client import telemetry_client_from_env
    client = telemetry_client_from_env()

    times, states = [], []
    impact_at = None
    min_radius = float(np.linalg.norm(r))
    for k in range(n_steps + 1):
        t = k * step
        if k > 0:
            h = step / substeps
            for _ in range(substeps):
                r, v = rk4(accel, r, v, h)
        times.append(t)
        states.append((*r, *v))
        values = orbit_values(r, v)
        client.send(values, timestamp_ns=int(round(t * 1e9)))
        radius = float(np.linalg.norm(r))
        min_radius = min(min_radius, radius)
        if radius < R_IMPACT:
            impact_at = t
            break

    a_f, e_f, i_f, f_f = state_to_elements(r, v)
    summary = {
        "run_id": run_id,
        "success": impact_at is None,
        "simulation_name": metadata.get("simulation_name"),
        "parameters": params,
        "model": {"j2": j2_on, "drag": inv_b > 0.0, "step_seconds": step, "substeps": substeps},
        "initial_period_s": period,
        "duration_s": times[-1],
        "requested_duration_s": duration,
        "sample_count": len(times),
        "telemetry": {"active": client.active, "frames": client.seq, "dropped": client.dropped},
        "min_radius_km": min_radius / 1000.0,
        "impact_time_s": impact_at,
        "final_state": {
            "t_s": times[-1],
            "r_m": [float(c) for c in r],
            "v_m_s": [float(c) for c in v],
            "radius_km": float(np.linalg.norm(r) / 1000.0),
            "speed_m_s": float(np.linalg.norm(v)),
            "semi_major_axis_km": a_f / 1000.0,
            "eccentricity": e_f,
            "inclination_deg": i_f,
            "true_anomaly_deg": f_f,
        },
        "execution_time_secs": None,
    }
    write_trajectory(out_dir / "trajectory.csv", times, states)
    if impact_at is not None:
        summary["execution_time_secs"] = time.monotonic() - started
        write_json(out_dir / "summary.json", summary)
        #  The crossing frame is on its way: let a watchdog rule end the job first.
        if client.active and grace > 0.0:
            time.sleep(grace)
        client.close()
        fail(EXIT_IMPACT, f"impact: radius {np.linalg.norm(r) / 1000.0:.1f} km is below "
                          f"Earth's radius {R_IMPACT / 1000.0:.0f} km at t={impact_at:.0f} s "
                          f"(perigee {a * (1.0 - e) / 1000.0:.1f} km)")
    write_plot(out_dir / "orbit_position.png", times, states, period,
               f"{metadata.get('simulation_name') or 'Basic orbit'}: run {run_id}")
    client.close()
    summary["execution_time_secs"] = time.monotonic() - started
    write_json(out_dir / "summary.json", summary)
    print(f"run {run_id}: {len(times)} samples over {times[-1]:.0f} s ({orbits:.3f} orbits), "
          f"final radius {np.linalg.norm(r) / 1000.0:.1f} km, "
          f"{summary['execution_time_secs']:.2f} s")


if __name__ == "__main__":
    main()
