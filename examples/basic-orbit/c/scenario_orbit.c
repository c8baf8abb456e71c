//  Basic orbit scenario in C, for the runner's generic `command` engine.
//
//  Reads the tutorial's orbital elements from the run config (TETRYX_RUN_CONFIG, parsed with
//  jansson), propagates two-body + J2 with fixed-step RK4 (10 s), streams the six orbit.*
//  variables through the lynx-telemetry C client (timestamp = simulation time) and writes
//  summary.json to TETRYX_OUTPUT_DIR. Exit 0 on success, 2 on a bad run config, 3 on an
//  impact (radius below 6371 km; the crossing frame is sent first and, with a runner
//  listening, the exit waits LYNX_ORBIT_IMPACT_GRACE_SECS, default 2, for its watchdog).
//
//  Build: see Makefile (pkg-config lynx-telemetry, or the repository's build tree).

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <jansson.h>
#include <lynx_telemetry.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MU 3.986004418e14
#define R_EARTH 6378137.0
#define R_IMPACT 6371000.0
#define J2 1.08262668e-3
#define STEP_SECS 10.0
#define PI 3.14159265358979323846
#define DEG (PI / 180.0)

enum { EXIT_CONFIG = 2, EXIT_IMPACT = 3 };

typedef struct {
    double a, e, i_deg, f_deg;
} elements_t;

static double s_norm(const double v[3])
{
    return sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
}

static double s_dot(const double a[3], const double b[3])
{
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
}

static void s_cross(const double a[3], const double b[3], double out[3])
{
    out[0] = a[1] * b[2] - a[2] * b[1];
    out[1] = a[2] * b[0] - a[0] * b[2];
    out[2] = a[0] * b[1] - a[1] * b[0];
}

static double s_clamp1(double x)
{
    return x < -1.0 ? -1.0 : x > 1.0 ? 1.0 : x;
}

static void s_to_state(double a, double e, double i, double raan, double argp, double f,
                       double r[3], double v[3])
{
    double p = a * (1.0 - e * e), rad = p / (1.0 + e * cos(f)), vs = sqrt(MU / p);
    double rp[2] = {rad * cos(f), rad * sin(f)}, vp[2] = {-vs * sin(f), vs * (e + cos(f))};
    double cO = cos(raan), sO = sin(raan), ci = cos(i), si = sin(i), cw = cos(argp), sw = sin(argp);
    double m[3][2] = {{cO * cw - sO * sw * ci, -cO * sw - sO * cw * ci},
                      {sO * cw + cO * sw * ci, -sO * sw + cO * cw * ci},
                      {sw * si, cw * si}};
    for (int k = 0; k < 3; k++) {
        r[k] = m[k][0] * rp[0] + m[k][1] * rp[1];
        v[k] = m[k][0] * vp[0] + m[k][1] * vp[1];
    }
}

static elements_t s_elements(const double r[3], const double v[3])
{
    double rn = s_norm(r), vn = s_norm(v), h[3], vxh[3], ev[3];
    s_cross(r, v, h);
    s_cross(v, h, vxh);
    for (int k = 0; k < 3; k++)
        ev[k] = vxh[k] / MU - r[k] / rn;
    elements_t el = {.e = s_norm(ev)};
    el.a = -MU / (2.0 * (0.5 * vn * vn - MU / rn));
    el.i_deg = acos(s_clamp1(h[2] / s_norm(h))) / DEG;
    double f;
    if (el.e > 1e-10) {
        f = acos(s_clamp1(s_dot(ev, r) / (el.e * rn)));
        if (s_dot(r, v) < 0.0)
            f = 2.0 * PI - f;
    } else { //  circular: argument of latitude
        double node[3] = {-h[1], h[0], 0.0}, nn = s_norm(node);
        f = nn > 1e-9 ? acos(s_clamp1(s_dot(node, r) / (nn * rn))) : 0.0;
        if (r[2] < 0.0)
            f = 2.0 * PI - f;
    }
    el.f_deg = f / DEG;
    return el;
}

//  d/dt (r, v) for two-body + J2.
static void s_deriv(const double y[6], double dy[6])
{
    double x = y[0], yy = y[1], z = y[2], r2 = x * x + yy * yy + z * z, rn = sqrt(r2);
    double k = -MU / (r2 * rn);
    double j = 1.5 * J2 * MU * R_EARTH * R_EARTH / (r2 * r2 * rn), zz = 5.0 * z * z / r2;
    dy[0] = y[3];
    dy[1] = y[4];
    dy[2] = y[5];
    dy[3] = k * x + j * x * (zz - 1.0);
    dy[4] = k * yy + j * yy * (zz - 1.0);
    dy[5] = k * z + j * z * (zz - 3.0);
}

static void s_rk4(double y[6], double dt)
{
    double k1[6], k2[6], k3[6], k4[6], t[6];
    s_deriv(y, k1);
    for (int i = 0; i < 6; i++)
        t[i] = y[i] + 0.5 * dt * k1[i];
    s_deriv(t, k2);
    for (int i = 0; i < 6; i++)
        t[i] = y[i] + 0.5 * dt * k2[i];
    s_deriv(t, k3);
    for (int i = 0; i < 6; i++)
        t[i] = y[i] + dt * k3[i];
    s_deriv(t, k4);
    for (int i = 0; i < 6; i++)
        y[i] += dt / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
}

static double s_param(json_t *params, const char *name, double fallback)
{
    json_t *value = json_object_get(params, name);
    if (!value)
        return fallback;
    if (!json_is_number(value)) {
        fprintf(stderr, "scenario_orbit: parameter %s is not a number\n", name);
        exit(EXIT_CONFIG);
    }
    return json_number_value(value);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    double started = s_now();
    const char *config_path = getenv("TETRYX_RUN_CONFIG");
    const char *out_dir = getenv("TETRYX_OUTPUT_DIR");
    if (!config_path || !*config_path) {
        fprintf(stderr, "scenario_orbit: TETRYX_RUN_CONFIG is not set\n");
        return EXIT_CONFIG;
    }
    if (!out_dir || !*out_dir)
        out_dir = ".";
    json_error_t jerr;
    json_t *config = json_load_file(config_path, 0, &jerr);
    if (!config) {
        fprintf(stderr, "scenario_orbit: cannot read %s: %s (line %d)\n", config_path, jerr.text,
                jerr.line);
        return EXIT_CONFIG;
    }
    json_t *params = json_object_get(config, "parameters");
    json_int_t run_id = json_integer_value(json_object_get(config, "run_id"));
    double a = s_param(params, "semi_major_axis_m", 7000000.0);
    double e = s_param(params, "eccentricity", 0.0001);
    double inc = s_param(params, "inclination_deg", 33.3);
    double raan = s_param(params, "raan_deg", 48.2);
    double argp = s_param(params, "arg_perigee_deg", 347.8);
    double f0 = s_param(params, "true_anomaly_deg", 85.3);
    double orbits = s_param(params, "duration_orbits", 0.75);
    if (!(a > R_IMPACT * 0.5) || !(e >= 0.0 && e < 1.0) || !(orbits > 0.0)) {
        fprintf(stderr, "scenario_orbit: not a closed orbit: a=%g e=%g orbits=%g\n", a, e, orbits);
        return EXIT_CONFIG;
    }
    const char *grace_env = getenv("LYNX_ORBIT_IMPACT_GRACE_SECS");
    double grace = grace_env ? atof(grace_env) : 2.0;

    double period = 2.0 * PI * sqrt(a * a * a / MU);
    long steps = (long)ceil(orbits * period / STEP_SECS - 1e-9);
    if (steps < 1)
        steps = 1;
    double y[6];
    s_to_state(a, e, inc * DEG, raan * DEG, argp * DEG, f0 * DEG, y, y + 3);

    static const char *const names[] = {"orbit.radius_km",          "orbit.speed_m_s",
                                        "orbit.semi_major_axis_km", "orbit.eccentricity",
                                        "orbit.inclination_deg",    "orbit.true_anomaly_deg"};
    lynx_telemetry_t *telemetry = lynx_telemetry_from_env();
    long samples = 0;
    double t = 0.0, min_radius = s_norm(y);
    bool impact = false;
    for (long k = 0; k <= steps; k++) {
        t = (double)k * STEP_SECS;
        if (k > 0)
            s_rk4(y, STEP_SECS);
        elements_t el = s_elements(y, y + 3);
        double radius = s_norm(y);
        double values[6] = {radius / 1000.0, s_norm(y + 3), el.a / 1000.0, el.e,
                            el.i_deg,        el.f_deg};
        if (lynx_telemetry_send_doubles(telemetry, (int64_t)k * 10000000000LL, names, values, 6) &&
            errno != EAGAIN) {
            fprintf(stderr, "scenario_orbit: telemetry: %s\n", strerror(errno));
            return 1;
        }
        samples++;
        if (radius < min_radius)
            min_radius = radius;
        if (radius < R_IMPACT) {
            impact = true;
            break;
        }
    }

    elements_t fin = s_elements(y, y + 3);
    json_t *summary = json_pack(
        "{s:I, s:b, s:s, s:O, s:f, s:f, s:I, s:f, s:f, s:{s:f, s:[f,f,f], s:[f,f,f], s:f, s:f, "
        "s:f, s:f, s:f, s:f}, s:{s:b, s:I, s:I}}",
        "run_id", run_id, "success", !impact, "engine", "command (C)", "parameters",
        params ? params : json_null(), "initial_period_s", period, "duration_s", t, "sample_count",
        (json_int_t)samples, "min_radius_km", min_radius / 1000.0, "execution_time_secs",
        s_now() - started, "final_state", "t_s", t, "r_m", y[0], y[1], y[2], "v_m_s", y[3], y[4],
        y[5], "radius_km", s_norm(y) / 1000.0, "speed_m_s", s_norm(y + 3), "semi_major_axis_km",
        fin.a / 1000.0, "eccentricity", fin.e, "inclination_deg", fin.i_deg, "true_anomaly_deg",
        fin.f_deg, "telemetry", "active", lynx_telemetry_active(telemetry), "frames",
        (json_int_t)lynx_telemetry_seq(telemetry), "dropped",
        (json_int_t)lynx_telemetry_dropped(telemetry));
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/summary.json", out_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (!summary || json_dump_file(summary, tmp, JSON_INDENT(2)) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "scenario_orbit: cannot write %s\n", path);
        return 1;
    }
    json_decref(summary);
    if (impact) {
        if (lynx_telemetry_active(telemetry) && grace > 0.0) {
            struct timespec ts = {(time_t)grace, (long)((grace - (double)(time_t)grace) * 1e9)};
            nanosleep(&ts, NULL);
        }
        lynx_telemetry_close(&telemetry);
        fprintf(stderr,
                "scenario_orbit: impact: radius %.1f km is below Earth's radius 6371 km at "
                "t=%.0f s\n",
                s_norm(y) / 1000.0, t);
        json_decref(config);
        return EXIT_IMPACT;
    }
    lynx_telemetry_close(&telemetry);
    json_decref(config);
    printf("run %lld: %ld samples over %.0f s, final radius %.1f km\n", (long long)run_id, samples,
           t, s_norm(y) / 1000.0);
    return 0;
}
