//  study_design_bench: time and peak memory to validate and sample a study of N runs x 7
//  dimensions with each sampling method. Each method runs in its own child process so its
//  peak RSS is its own.
//
//      study_design_bench [RUNS]      (default 1000000)
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker_study.h"

static double s_now_secs(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

static void s_add_dispersion(lynx_value_t *dispersions, const char *name, const char *type,
                             const char *k1, double v1, const char *k2, double v2)
{
    lynx_value_t *distribution = lynx_value_map();
    lynx_value_set_string(distribution, "type", type);
    lynx_value_set_double(distribution, k1, v1);
    lynx_value_set_double(distribution, k2, v2);
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set(entry, "distribution", &distribution);
    lynx_value_set(dispersions, name, &entry);
}

//  The tutorial's seven dimensions, three of them normal so the inverse CDF cost shows.
static lynx_value_t *s_config(const char *method, int64_t runs)
{
    lynx_value_t *config = lynx_value_map();
    lynx_value_t *simulation = lynx_value_map();
    lynx_value_set_string(simulation, "name", "bench");
    lynx_value_set(config, "simulation", &simulation);
    lynx_value_t *monte_carlo = lynx_value_map();
    lynx_value_set_int(monte_carlo, "runs", runs);
    lynx_value_set_int(monte_carlo, "seed", 42);
    lynx_value_set_string(monte_carlo, "sampling_method", method);
    lynx_value_set(config, "monte_carlo", &monte_carlo);
    lynx_value_t *dispersions = lynx_value_map();
    s_add_dispersion(dispersions, "semi_major_axis_m", "normal", "mean", 7.0e6, "std_dev", 1.0e4);
    s_add_dispersion(dispersions, "eccentricity", "uniform", "min", 5e-5, "max", 2e-3);
    s_add_dispersion(dispersions, "inclination_deg", "normal", "mean", 33.0, "std_dev", 1.0);
    s_add_dispersion(dispersions, "raan_deg", "uniform", "min", 40.0, "max", 55.0);
    s_add_dispersion(dispersions, "arg_perigee_deg", "uniform", "min", 330.0, "max", 355.0);
    s_add_dispersion(dispersions, "true_anomaly_deg", "normal", "mean", 85.0, "std_dev", 5.0);
    s_add_dispersion(dispersions, "duration_orbits", "uniform", "min", 0.7, "max", 0.8);
    lynx_value_set(config, "dispersions", &dispersions);
    return config;
}

static int s_run_method(const char *method, int64_t runs)
{
    lynx_value_t *config = s_config(method, runs);
    lynx_value_t *errors = lynx_value_array();
    double start = s_now_secs();
    broker_study_t *study = broker_study_new(config, 0, errors, NULL);
    if (!study) {
        printf("%-18s not available: %s\n", method,
               lynx_value_get_string(lynx_value_at(errors, 0), "message", "?"));
        return 1;
    }
    double validated = s_now_secs();
    if (broker_study_sample(study)) {
        printf("%-18s out of memory\n", method);
        return 1;
    }
    double sampled = s_now_secs();
    //  Touch the result so the work cannot be skipped.
    lynx_value_t *last = broker_study_run_parameters(study, runs - 1);
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    printf("%-18s runs=%" PRId64 " dims=7 validate_ms=%.2f sample_ms=%.1f peak_rss_mb=%.1f\n",
           method, runs, (validated - start) * 1e3, (sampled - validated) * 1e3,
           (double)usage.ru_maxrss / 1024.0);
    lynx_value_destroy(&last);
    broker_study_destroy(&study);
    lynx_value_destroy(&errors);
    lynx_value_destroy(&config);
    return 0;
}

int main(int argc, char **argv)
{
    int64_t runs = argc > 1 ? strtoll(argv[1], NULL, 10) : 1000000;
    const char *methods[] = {"monte_carlo", "latin_hypercube", "quasi_monte_carlo"};
    int failures = 0;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            int rc = s_run_method(methods[i], runs);
            fflush(stdout);
            _exit(rc);
        }
        int status = 0;
        waitpid(child, &status, 0);
        failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    return failures ? 1 : 0;
}
