//  lynx_rules: early-termination rules, from the config's early_termination block to "which
//  rule fires on this telemetry": the documented examples, operators and the compact form,
//  groups, defaults, the runner's fast path, and random rule sets against a reference reading
//  (fixture: lynx_rules_fixture.h; validation: lynx_rules_check_test).
#include "lynx_rules_fixture.h"

//  ---------------------------------------------------------------------------------------
//  The documented examples

//  early-termination.txt, "Simple condition".
static void test_simple_condition(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- name: battery_low\n"
                                  "  description: Battery critically low\n"
                                  "  variable: battery_state_of_charge\n"
                                  "  operator: lt\n"
                                  "  threshold: 10.0\n"
                                  "  units: percent\n");
    assert_true(lynx_rules_enabled(rules));
    assert_true(lynx_rules_check_frequency_hz(rules) == 10.0);
    assert_int_equal(lynx_rules_count(rules), 1);
    assert_string_equal(lynx_rules_name(rules, 0), "battery_low");
    assert_string_equal(lynx_rules_description(rules, 0), "Battery critically low");
    assert_int_equal(lynx_rules_variable_count(rules), 1);
    assert_string_equal(lynx_rules_variable_name(rules, 0), "battery_state_of_charge");

    //  "stop the run if battery_state_of_charge < 10.0 percent"
    const s_case_t cases[] = {
        {"battery_state_of_charge=9.99", "battery_low"},
        {"battery_state_of_charge=0", "battery_low"},
        {"battery_state_of_charge=10", NULL},
        {"battery_state_of_charge=55", NULL},
        {"", NULL},                //  not reported yet
        {"altitude_km=100", NULL}, //  other variables do not matter
        {"battery_state_of_charge=nan", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, cases);

    //  What the runner puts in the trigger event.
    const char *fired = s_fire(rules, "battery_state_of_charge=3");
    assert_string_equal(lynx_rules_description(rules, (size_t)lynx_rules_find(rules, fired)),
                        "Battery critically low");
    lynx_rules_destroy(&rules);
    assert_null(rules);
}

//  early-termination.txt, "Grouped conditions" and "Nested groups", with the sentence under
//  each ("Fires when: ...") as a table of frames.
static void test_grouped_examples(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- name: unsafe_orbit\n"
                                  "  description: Low battery during orbital decay\n"
                                  "  all:\n"
                                  "  - variable: battery_state_of_charge\n"
                                  "    operator: lt\n"
                                  "    threshold: 10.0\n"
                                  "    units: percent\n"
                                  "  - variable: altitude_km\n"
                                  "    operator: lt\n"
                                  "    threshold: 150.0\n"
                                  "    units: km\n");
    //  battery_state_of_charge < 10.0% AND altitude_km < 150.0 km
    const s_case_t all_cases[] = {
        {"battery_state_of_charge=5 altitude_km=100", "unsafe_orbit"},
        {"battery_state_of_charge=5 altitude_km=200", NULL},
        {"battery_state_of_charge=50 altitude_km=100", NULL},
        {"battery_state_of_charge=50 altitude_km=200", NULL},
        {"battery_state_of_charge=5", NULL}, //  altitude not seen yet
        {NULL, NULL},
    };
    s_expect_cases(rules, all_cases);
    lynx_rules_destroy(&rules);

    rules = s_rules("conditions:\n"
                    "- name: vehicle_unstable\n"
                    "  description: Vehicle is tumbling or battery is critically low\n"
                    "  any:\n"
                    "  - variable: body_spin_rate_deg_s\n"
                    "    operator: gt\n"
                    "    threshold: 15.0\n"
                    "    units: deg/s\n"
                    "  - variable: battery_state_of_charge\n"
                    "    operator: lt\n"
                    "    threshold: 10.0\n"
                    "    units: percent\n");
    //  body_spin_rate_deg_s > 15.0 deg/s OR battery_state_of_charge < 10.0%
    const s_case_t any_cases[] = {
        {"body_spin_rate_deg_s=20 battery_state_of_charge=50", "vehicle_unstable"},
        {"body_spin_rate_deg_s=1 battery_state_of_charge=5", "vehicle_unstable"},
        {"body_spin_rate_deg_s=20 battery_state_of_charge=5", "vehicle_unstable"},
        {"body_spin_rate_deg_s=1 battery_state_of_charge=50", NULL},
        {"body_spin_rate_deg_s=20", "vehicle_unstable"}, //  one seen member is enough
        {"body_spin_rate_deg_s=15", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, any_cases);
    lynx_rules_destroy(&rules);

    rules = s_rules("conditions:\n"
                    "- name: landing_abort\n"
                    "  description: Abort if low altitude and either unstable or poorly "
                    "localized\n"
                    "  all:\n"
                    "  - variable: altitude_m\n"
                    "    operator: lt\n"
                    "    threshold: 30.0\n"
                    "    units: m\n"
                    "  - any:\n"
                    "    - variable: body_spin_rate_deg_s\n"
                    "      operator: gt\n"
                    "      threshold: 15.0\n"
                    "      units: deg/s\n"
                    "    - variable: vio_tracking_quality\n"
                    "      operator: lt\n"
                    "      threshold: 0.3\n"
                    "      units: dimensionless\n");
    //  altitude_m < 30.0 m AND (body_spin_rate_deg_s > 15.0 deg/s OR vio_tracking_quality < 0.3)
    const s_case_t nested_cases[] = {
        {"altitude_m=10 body_spin_rate_deg_s=20 vio_tracking_quality=0.9", "landing_abort"},
        {"altitude_m=10 body_spin_rate_deg_s=1 vio_tracking_quality=0.1", "landing_abort"},
        {"altitude_m=10 body_spin_rate_deg_s=20 vio_tracking_quality=0.1", "landing_abort"},
        {"altitude_m=10 body_spin_rate_deg_s=1 vio_tracking_quality=0.9", NULL},
        {"altitude_m=50 body_spin_rate_deg_s=20 vio_tracking_quality=0.1", NULL},
        {"altitude_m=50 body_spin_rate_deg_s=1 vio_tracking_quality=0.9", NULL},
        {"body_spin_rate_deg_s=20 vio_tracking_quality=0.1", NULL},
        {"altitude_m=10 vio_tracking_quality=0.1", "landing_abort"},
        {"altitude_m=10", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, nested_cases);
    assert_int_equal(lynx_rules_variable_count(rules), 3);
    assert_string_equal(lynx_rules_variable_name(rules, 2), "vio_tracking_quality");
    lynx_rules_destroy(&rules);
}

//  early-termination.txt, "Multiple conditions": the run stops when any one fires; when
//  several fire at once, the first in the config is the one reported.
static void test_multiple_conditions(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- name: battery_low\n"
                                  "  description: Battery critically low\n"
                                  "  variable: battery_state_of_charge\n"
                                  "  operator: lt\n"
                                  "  threshold: 10.0\n"
                                  "  units: percent\n"
                                  "- name: orbital_decay\n"
                                  "  description: Orbit has decayed below safe altitude\n"
                                  "  variable: altitude_km\n"
                                  "  operator: lt\n"
                                  "  threshold: 150.0\n"
                                  "  units: km\n");
    assert_int_equal(lynx_rules_count(rules), 2);
    assert_string_equal(lynx_rules_name(rules, 1), "orbital_decay");
    assert_int_equal(lynx_rules_find(rules, "orbital_decay"), 1);
    assert_int_equal(lynx_rules_find(rules, "nope"), -1);
    const s_case_t cases[] = {
        {"battery_state_of_charge=5 altitude_km=400", "battery_low"},
        {"battery_state_of_charge=50 altitude_km=100", "orbital_decay"},
        {"battery_state_of_charge=5 altitude_km=100", "battery_low"},
        {"altitude_km=100", "orbital_decay"}, //  battery not seen: the next rule still counts
        {"battery_state_of_charge=50 altitude_km=400", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, cases);
    lynx_rules_destroy(&rules);
}

//  batches-and-jobs.txt's submission, as JSON (YAML reads JSON): the compact form.
static void test_batches_compact_example(void **state)
{
    (void)state;
    lynx_value_t *body = s_yaml("{\"config\": {\n"
                                "  \"early_termination\": {\n"
                                "    \"enabled\": true,\n"
                                "    \"check_frequency_hz\": 10.0,\n"
                                "    \"conditions\": [\n"
                                "      {\n"
                                "        \"variable\": \"battery_state_of_charge\",\n"
                                "        \"condition\": \"< 0.1\",\n"
                                "        \"description\": \"Battery critically low\"\n"
                                "      }\n"
                                "    ]\n"
                                "  }}}\n");
    lynx_rules_t *rules = s_rules_from(lynx_value_get_path(body, "config.early_termination"));
    assert_int_equal(lynx_rules_count(rules), 1);
    assert_string_equal(lynx_rules_name(rules, 0), "battery_state_of_charge < 0.1");
    assert_string_equal(lynx_rules_description(rules, 0), "Battery critically low");
    const s_case_t cases[] = {
        {"battery_state_of_charge=0.05", "battery_state_of_charge < 0.1"},
        {"battery_state_of_charge=0.1", NULL},
        {"battery_state_of_charge=0.8", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, cases);
    lynx_rules_destroy(&rules);
    lynx_value_destroy(&body);
}

//  tutorial-basic-orbit.txt: the batch ships with early termination off, and the
//  "Early termination" section turns it on with one compact condition.
static void test_tutorial_examples(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("{\"enabled\": false, \"check_frequency_hz\": 1.0, "
                                  "\"conditions\": []}");
    assert_false(lynx_rules_enabled(rules));
    assert_true(lynx_rules_check_frequency_hz(rules) == 1.0);
    assert_int_equal(lynx_rules_count(rules), 0);
    assert_int_equal(lynx_rules_variable_count(rules), 0);
    s_expect_fire(rules, "orbit.radius_km=0", NULL);
    lynx_rules_destroy(&rules);

    rules = s_rules("{\n"
                    "  \"enabled\": true,\n"
                    "  \"check_frequency_hz\": 10.0,\n"
                    "  \"conditions\": [\n"
                    "    {\n"
                    "      \"variable\": \"orbit.radius_km\",\n"
                    "      \"condition\": \"< 6371\",\n"
                    "      \"description\": \"Orbit has decayed below Earth surface radius\"\n"
                    "    }\n"
                    "  ]\n"
                    "}\n");
    assert_string_equal(lynx_rules_name(rules, 0), "orbit.radius_km < 6371");
    assert_string_equal(lynx_rules_variable_name(rules, 0), "orbit.radius_km");
    //  "If orbit.radius_km drops below 6371 km, the runner kills the subprocess."
    const s_case_t cases[] = {
        {"orbit.radius_km=6983.4 orbit.speed_m_s=7553", NULL},
        {"orbit.radius_km=6371", NULL},
        {"orbit.radius_km=6370.99 orbit.speed_m_s=7900", "orbit.radius_km < 6371"},
        {"orbit.speed_m_s=7900", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, cases);
    lynx_rules_destroy(&rules);
}

//  ---------------------------------------------------------------------------------------
//  Operators and the compact form

//  Each operator's truth just below, at and just above its threshold.
static const struct {
    const char *name;
    const char *symbol;
    bool below, at, above;
} s_operators[] = {
    {"lt", "<", true, false, false},  {"lte", "<=", true, true, false},
    {"gt", ">", false, false, true},  {"gte", ">=", false, true, true},
    {"eq", "==", false, true, false}, {"neq", "!=", true, false, true},
};
#define OPERATOR_COUNT (sizeof s_operators / sizeof s_operators[0])

//  One rule "r" on variable x, given either as operator + threshold or as a condition.
static lynx_rules_t *s_one_rule(const char *operator_name, double threshold, const char *condition)
{
    lynx_value_t *block = lynx_value_map();
    lynx_value_t *conditions = lynx_value_array();
    lynx_value_t *rule = lynx_value_map();
    lynx_value_set_string(rule, "name", "r");
    lynx_value_set_string(rule, "variable", "x");
    if (condition)
        lynx_value_set_string(rule, "condition", condition);
    else {
        lynx_value_set_string(rule, "operator", operator_name);
        lynx_value_set_double(rule, "threshold", threshold);
        lynx_value_set_string(rule, "units", "m");
    }
    assert_int_equal(lynx_value_append(conditions, &rule), 0);
    assert_int_equal(lynx_value_set(block, "conditions", &conditions), 0);
    lynx_rules_t *rules = s_rules_from(block);
    lynx_value_destroy(&block);
    return rules;
}

//  x one ulp below, at and one ulp above threshold: no tolerance anywhere.
static void s_expect_operator(const lynx_rules_t *rules, size_t op, double threshold,
                              const char *context)
{
    const double values[3] = {nextafter(threshold, -INFINITY), threshold,
                              nextafter(threshold, INFINITY)};
    const bool expected[3] = {s_operators[op].below, s_operators[op].at, s_operators[op].above};
    for (int i = 0; i < 3; i++) {
        char frame[64];
        snprintf(frame, sizeof frame, "x=%.17g", values[i]);
        if ((s_fire(rules, frame) != NULL) != expected[i])
            fail_msg("%s, %s: expected %s", context, frame, expected[i] ? "fire" : "no fire");
    }
}

static void test_operators_at_threshold(void **state)
{
    (void)state;
    const double thresholds[] = {10.0, -2.5, 0.0, 1e-3, 6371.0, 0.1};
    for (size_t op = 0; op < OPERATOR_COUNT; op++)
        for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
            char context[96], condition[64];
            snprintf(context, sizeof context, "x %s %g", s_operators[op].name, thresholds[t]);
            lynx_rules_t *rules = s_one_rule(s_operators[op].name, thresholds[t], NULL);
            s_expect_operator(rules, op, thresholds[t], context);
            lynx_rules_destroy(&rules);

            snprintf(condition, sizeof condition, "%s %.17g", s_operators[op].symbol,
                     thresholds[t]);
            rules = s_one_rule(NULL, 0, condition);
            s_expect_operator(rules, op, thresholds[t], condition);
            lynx_rules_destroy(&rules);
        }
}

//  A comparison with an unseen or NaN value is false, whatever the operator: NaN != 3 does not
//  fire. Infinities compare as numbers.
static void test_unseen_and_nan(void **state)
{
    (void)state;
    for (size_t op = 0; op < OPERATOR_COUNT; op++) {
        lynx_rules_t *rules = s_one_rule(s_operators[op].name, 3.0, NULL);
        s_expect_fire(rules, "", NULL);
        s_expect_fire(rules, "y=1", NULL);
        s_expect_fire(rules, "x=nan", NULL);
        s_expect_fire(rules, "x=-nan", NULL);
        s_expect_fire(rules, "x=inf", s_operators[op].above ? "r" : NULL);
        s_expect_fire(rules, "x=-inf", s_operators[op].below ? "r" : NULL);
        lynx_rules_destroy(&rules);
    }
    //  Inside groups too: NaN does not make an any fire, nor an all pass.
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- {name: either, any: [{variable: a, condition: '!= 0'},\n"
                                  "                       {variable: b, condition: '!= 0'}]}\n"
                                  "- {name: both, all: [{variable: a, condition: '!= 1'},\n"
                                  "                     {variable: b, condition: '!= 1'}]}\n");
    const s_case_t cases[] = {
        {"a=nan b=nan", NULL}, {"a=nan b=2", "either"}, {"a=0 b=nan", NULL},
        {"a=0 b=0", "both"},   {"a=0", NULL},           {NULL, NULL},
    };
    s_expect_cases(rules, cases);
    lynx_rules_destroy(&rules);
}

//  Valid compact conditions: how they are named, and that they compare as their operator.
static void test_compact_parsing(void **state)
{
    (void)state;
    const struct {
        const char *condition;
        const char *name; //  derived rule name, for variable x
        const char *op;
        double threshold;
    } cases[] = {
        {"< 0.1", "x < 0.1", "lt", 0.1},
        {"<0.1", "x < 0.1", "lt", 0.1},
        {"  <=   6371  ", "x <= 6371", "lte", 6371},
        {"\t>=\t-5", "x >= -5", "gte", -5},
        {">-5", "x > -5", "gt", -5},
        {"== 1e-3", "x == 1e-3", "eq", 1e-3},
        {"!= +2.5E+2", "x != +2.5E+2", "neq", 250},
        {"> -1.5e-7", "x > -1.5e-7", "gt", -1.5e-7},
        {"< .5", "x < .5", "lt", 0.5},
        {">= 5.", "x >= 5.", "gte", 5},
        {"== 0", "x == 0", "eq", 0},
        {"!=-0.0", "x != -0.0", "neq", 0},
        {"< 1e308", "x < 1e308", "lt", 1e308},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *block = s_yaml("conditions: [{variable: x, condition: ''}]");
        lynx_value_t *rule = lynx_value_at(lynx_value_get(block, "conditions"), 0);
        lynx_value_set_string(rule, "condition", cases[i].condition);
        lynx_rules_t *rules = s_rules_from(block);
        assert_string_equal(lynx_rules_name(rules, 0), cases[i].name);
        size_t op = 0;
        while (strcmp(s_operators[op].name, cases[i].op) != 0)
            op++;
        s_expect_operator(rules, op, cases[i].threshold, cases[i].condition);
        //  A name, when given, wins over the derived one.
        lynx_rules_destroy(&rules);
        lynx_value_set_string(rule, "name", "custom");
        rules = s_rules_from(block);
        assert_string_equal(lynx_rules_name(rules, 0), "custom");
        lynx_rules_destroy(&rules);
        lynx_value_destroy(&block);
    }
}

static void test_compact_errors(void **state)
{
    (void)state;
    const char *unparsable[] = {
        "<< 3", "",       "   ",         "3",     "<",     "< ",     "<3 4",  "= 3",
        "=< 3", "=> 3",   "< 0x10",      "< nan", "< inf", "< 1e",   "< 1e+", "< .",
        "< -",  "< 3 km", "less than 3", "lt 3",  "< 1,5", "<= = 3", "< --3", "3 <",
    };
    for (size_t i = 0; i < sizeof unparsable / sizeof unparsable[0] + 1; i++) {
        bool out_of_range = i == sizeof unparsable / sizeof unparsable[0];
        const char *condition = out_of_range ? "< 1e999" : unparsable[i];
        lynx_value_t *block = s_yaml("conditions: [{variable: x, condition: ''}]");
        lynx_value_t *rule = lynx_value_at(lynx_value_get(block, "conditions"), 0);
        lynx_value_set_string(rule, "condition", condition);
        lynx_value_t *errors = lynx_value_array();
        assert_null(lynx_rules_new(block, PATH, errors, NULL));
        char message[256];
        if (out_of_range)
            snprintf(message, sizeof message, "number out of range in '%s'", condition);
        else
            snprintf(message, sizeof message,
                     "cannot parse '%s' (expected an operator <, <=, >, >=, ==, != and a number)",
                     condition);
        const s_problem_t expected[MAX_PROBLEMS] = {{PATH ".conditions[0].condition", message}};
        s_assert_problems(condition, errors, expected);
        lynx_value_destroy(&errors);
        lynx_value_destroy(&block);
    }
}

//  ---------------------------------------------------------------------------------------
//  Groups and several rules

//  Nested all/any: a table of value sets and the rule each one fires.
static void test_nested_groups(void **state)
{
    (void)state;
    //  deorbit: a < 0 AND (b > 10 OR (c == 1 AND d != 0))
    //  degraded: ANY (a >= 100, ALL (b <= -10, c < 0))
    //  d > 5: compact and unnamed, so that is its name
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- name: deorbit\n"
                                  "  all:\n"
                                  "  - {variable: a, operator: lt, threshold: 0, units: m}\n"
                                  "  - any:\n"
                                  "    - {variable: b, operator: gt, threshold: 10, units: m}\n"
                                  "    - all:\n"
                                  "      - {variable: c, condition: '== 1'}\n"
                                  "      - {variable: d, condition: '!= 0'}\n"
                                  "- name: degraded\n"
                                  "  any:\n"
                                  "  - {variable: a, condition: '>= 100'}\n"
                                  "  - all:\n"
                                  "    - {variable: b, condition: '<= -10'}\n"
                                  "    - {variable: c, condition: '< 0'}\n"
                                  "- {variable: d, condition: '> 5'}\n");
    assert_int_equal(lynx_rules_count(rules), 3);
    assert_int_equal(lynx_rules_variable_count(rules), 4);
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        assert_string_equal(lynx_rules_variable_name(rules, (size_t)i), names[i]);
        assert_int_equal(lynx_rules_variable_index(rules, names[i]), i);
    }
    assert_int_equal(lynx_rules_variable_index(rules, "e"), -1);
    assert_null(lynx_rules_variable_name(rules, 4));

    const s_case_t cases[] = {
        //  deorbit through b
        {"a=-1 b=11 c=0 d=0", "deorbit"},
        {"a=-1 b=10 c=0 d=0", NULL},
        {"a=0 b=11 c=1 d=1", NULL},
        //  deorbit through c AND d
        {"a=-1 b=0 c=1 d=1", "deorbit"},
        {"a=-1 b=0 c=1 d=0", NULL},
        {"a=-1 b=0 c=2 d=1", NULL},
        {"a=-1 c=1 d=-3", "deorbit"}, //  b unseen: the other branch decides
        {"a=-1 c=1", NULL},
        //  degraded
        {"a=100 b=0 c=0 d=0", "degraded"},
        {"a=99 b=-10 c=-1 d=0", "degraded"},
        {"a=99 b=-10 c=0 d=0", NULL},
        {"a=99 b=-9 c=-1 d=0", NULL},
        {"b=-20 c=-5", "degraded"},
        //  d > 5, and ordering: the earliest rule that fires is the one reported
        {"d=6", "d > 5"},
        {"a=-1 b=11 d=6", "deorbit"},
        {"a=200 d=6", "degraded"},
        {"a=-1 b=-20 c=-1 d=6", "degraded"}, //  deorbit's any: b=-20 no, c=-1 != 1
        {"a=-1 b=-20 c=1 d=6", "deorbit"},
        {"", NULL},
        {"a=nan b=nan c=nan d=nan", NULL},
        {NULL, NULL},
    };
    s_expect_cases(rules, cases);
    lynx_rules_destroy(&rules);
}

//  Evaluation is short-circuit: an all stops at its first false member, an any at its first
//  true one, and the rules after the one that fired are not looked at.
static void test_short_circuit(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- {name: both, all: [{variable: a, condition: '< 0'},\n"
                                  "                     {variable: b, condition: '< 0'}]}\n"
                                  "- {name: either, any: [{variable: c, condition: '< 0'},\n"
                                  "                       {variable: d, condition: '< 0'}]}\n");
    const struct {
        const char *frame;
        size_t lookups;
    } cases[] = {
        {"a=1 b=-1 c=1 d=1", 3},  //  a; c, d
        {"a=-1 b=-1 c=1 d=1", 2}, //  a, b: fired
        {"a=-1 b=1 c=-1 d=1", 3}, //  a, b; c: fired
        {"a=1 c=1 d=-1", 3},      //  a; c, d: fired
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_frame_t frame;
        s_frame_parse(cases[i].frame, &frame);
        lynx_rules_evaluate(rules, s_lookup, &frame);
        if (frame.lookups != cases[i].lookups)
            fail_msg("%s: %zu lookups, expected %zu", cases[i].frame, frame.lookups,
                     cases[i].lookups);
    }
    lynx_rules_destroy(&rules);
}

//  enabled: false keeps the rules checked and listed, but nothing ever fires.
static void test_disabled(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("enabled: false\n"
                                  "check_frequency_hz: 2.5\n"
                                  "conditions:\n"
                                  "- {name: low, variable: x, operator: lt, threshold: 1, "
                                  "units: m}\n");
    assert_false(lynx_rules_enabled(rules));
    assert_true(lynx_rules_check_frequency_hz(rules) == 2.5);
    assert_int_equal(lynx_rules_count(rules), 1);
    assert_int_equal(lynx_rules_variable_count(rules), 1);
    s_expect_fire(rules, "x=0", NULL);
    double values[1] = {0};
    bool seen[1] = {true};
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), -1);
    lynx_rules_destroy(&rules);
}

//  Missing pieces take their defaults; null means missing.
static void test_defaults(void **state)
{
    (void)state;
    const char *blocks[] = {"", "{}", "conditions: []", "{enabled: ~, check_frequency_hz: ~}",
                            "conditions: null"};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) {
        lynx_rules_t *rules = s_rules(blocks[i]);
        assert_true(lynx_rules_enabled(rules));
        assert_true(lynx_rules_check_frequency_hz(rules) == LYNX_RULES_CHECK_FREQUENCY_HZ_DEFAULT);
        assert_int_equal(lynx_rules_count(rules), 0);
        assert_null(lynx_rules_name(rules, 0));
        assert_null(lynx_rules_evaluate(rules, s_lookup, &(s_frame_t){0}));
        lynx_rules_destroy(&rules);
    }
    //  No block at all, no path, no lists: the same.
    lynx_rules_t *rules = lynx_rules_new(NULL, NULL, NULL, NULL);
    assert_non_null(rules);
    assert_true(lynx_rules_enabled(rules));
    lynx_rules_destroy(&rules);
    lynx_rules_destroy(&rules);
    lynx_rules_destroy(NULL);

    //  The extremes of check_frequency_hz, a description-less rule, integer thresholds.
    rules = s_rules("check_frequency_hz: 1000\n"
                    "conditions: [{name: n, variable: x, operator: eq, threshold: 3, units: m}]\n");
    assert_true(lynx_rules_check_frequency_hz(rules) == 1000);
    assert_null(lynx_rules_description(rules, 0));
    s_expect_fire(rules, "x=3", "n");
    lynx_rules_destroy(&rules);
    rules = s_rules("check_frequency_hz: 0.001\n");
    assert_true(lynx_rules_check_frequency_hz(rules) == 0.001);
    lynx_rules_destroy(&rules);
}

//  The runner's fast path, driven directly: values by variable index, seen flags or NaN.
static void test_values_fast_path(void **state)
{
    (void)state;
    lynx_rules_t *rules = s_rules("conditions:\n"
                                  "- {variable: orbit.radius_km, condition: '< 6371'}\n"
                                  "- name: tumbling\n"
                                  "  any:\n"
                                  "  - {variable: rate, condition: '> 15'}\n"
                                  "  - {variable: orbit.radius_km, condition: '> 1e6'}\n");
    //  A variable referenced twice has one slot.
    assert_int_equal(lynx_rules_variable_count(rules), 2);
    int radius = lynx_rules_variable_index(rules, "orbit.radius_km");
    int rate = lynx_rules_variable_index(rules, "rate");
    assert_int_equal(radius, 0);
    assert_int_equal(rate, 1);

    double values[2] = {NAN, NAN};
    bool seen[2] = {false, false};
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), -1);
    values[radius] = 7000;
    seen[radius] = true;
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), -1);
    values[rate] = 20;
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), -1); //  rate unseen
    assert_int_equal(lynx_rules_evaluate_values(rules, values, NULL), 1);  //  20 counts as seen
    seen[rate] = true;
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), 1);
    values[radius] = 6000;
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), 0);
    assert_string_equal(lynx_rules_name(rules, 0), "orbit.radius_km < 6371");
    assert_null(lynx_rules_description(rules, 0));
    values[radius] = NAN;
    values[rate] = 1;
    assert_int_equal(lynx_rules_evaluate_values(rules, values, seen), -1);

    //  NULL arguments are refused, not dereferenced.
    assert_int_equal(lynx_rules_evaluate_values(NULL, values, seen), -1);
    assert_int_equal(lynx_rules_evaluate_values(rules, NULL, seen), -1);
    assert_null(lynx_rules_evaluate(rules, NULL, NULL));
    assert_null(lynx_rules_evaluate(NULL, s_lookup, NULL));
    lynx_rules_destroy(&rules);
}

//  ---------------------------------------------------------------------------------------
//  Random rule sets against a direct reading of the config: the compiled jumps must agree
//  with "all is AND, any is OR, unseen and NaN are false, first rule wins".

typedef struct {
    uint64_t state;
} s_rng_t;

static uint64_t s_next(s_rng_t *rng)
{
    rng->state ^= rng->state << 13;
    rng->state ^= rng->state >> 7;
    rng->state ^= rng->state << 17;
    return rng->state;
}

static size_t s_pick(s_rng_t *rng, size_t count)
{
    return (size_t)(s_next(rng) % count);
}

static const char *const s_fuzz_variables[] = {"a", "b", "c", "d"};

static lynx_value_t *s_random_node(s_rng_t *rng, int depth)
{
    lynx_value_t *node = lynx_value_map();
    if (depth >= 4 || s_pick(rng, 3) == 0) {
        lynx_value_set_string(node, "variable", s_fuzz_variables[s_pick(rng, 4)]);
        size_t op = s_pick(rng, OPERATOR_COUNT);
        double threshold = (double)s_pick(rng, 3) - 1;
        if (s_pick(rng, 2)) {
            char condition[32];
            snprintf(condition, sizeof condition, "%s %g", s_operators[op].symbol, threshold);
            lynx_value_set_string(node, "condition", condition);
        } else {
            lynx_value_set_string(node, "operator", s_operators[op].name);
            lynx_value_set_double(node, "threshold", threshold);
            lynx_value_set_string(node, "units", "m");
        }
        return node;
    }
    lynx_value_t *members = lynx_value_array();
    size_t count = 1 + s_pick(rng, 3);
    for (size_t i = 0; i < count; i++) {
        lynx_value_t *member = s_random_node(rng, depth + 1);
        assert_int_equal(lynx_value_append(members, &member), 0);
    }
    assert_int_equal(lynx_value_set(node, s_pick(rng, 2) ? "all" : "any", &members), 0);
    return node;
}

static bool s_reference(const lynx_value_t *node, s_frame_t *frame)
{
    const lynx_value_t *all = lynx_value_get(node, "all");
    const lynx_value_t *any = lynx_value_get(node, "any");
    const lynx_value_t *group = all ? all : any;
    if (group) {
        for (size_t i = 0; i < lynx_value_size(group); i++)
            if (s_reference(lynx_value_at(group, i), frame) != (all != NULL))
                return all == NULL;
        return all != NULL;
    }
    double value;
    if (!s_lookup(lynx_value_get_string(node, "variable", ""), &value, frame) || isnan(value))
        return false;
    const char *op = lynx_value_get_string(node, "operator", NULL);
    double threshold = lynx_value_get_double(node, "threshold", 0);
    if (!op) {
        const char *condition = lynx_value_get_string(node, "condition", "");
        size_t len = strcspn(condition, " ");
        for (size_t i = 0; i < OPERATOR_COUNT; i++)
            if (strlen(s_operators[i].symbol) == len &&
                strncmp(s_operators[i].symbol, condition, len) == 0)
                op = s_operators[i].name;
        threshold = strtod(condition + len, NULL);
    }
    return strcmp(op, "lt") == 0    ? value < threshold
           : strcmp(op, "lte") == 0 ? value <= threshold
           : strcmp(op, "gt") == 0  ? value > threshold
           : strcmp(op, "gte") == 0 ? value >= threshold
           : strcmp(op, "eq") == 0  ? value == threshold
                                    : value != threshold;
}

static void test_random_rules_match_reference(void **state)
{
    (void)state;
    s_rng_t rng = {0x9e3779b97f4a7c15u};
    const char *const values[] = {"-1", "0", "1", "0.5", "-2", "nan", NULL}; //  NULL: unseen
    for (int round = 0; round < 300; round++) {
        lynx_value_t *block = lynx_value_map();
        lynx_value_t *conditions = lynx_value_array();
        size_t rule_count = 1 + s_pick(&rng, 4);
        for (size_t r = 0; r < rule_count; r++) {
            lynx_value_t *rule = s_random_node(&rng, 1);
            char name[32];
            snprintf(name, sizeof name, "rule%zu", r);
            lynx_value_set_string(rule, "name", name);
            assert_int_equal(lynx_value_append(conditions, &rule), 0);
        }
        assert_int_equal(lynx_value_set(block, "conditions", &conditions), 0);
        lynx_rules_t *rules = s_rules_from(block);
        conditions = lynx_value_get(block, "conditions");

        for (int trial = 0; trial < 40; trial++) {
            char text[128] = "";
            for (size_t v = 0; v < 4; v++) {
                const char *value = values[s_pick(&rng, sizeof values / sizeof values[0])];
                if (value)
                    snprintf(text + strlen(text), sizeof text - strlen(text), "%s=%s ",
                             s_fuzz_variables[v], value);
            }
            s_frame_t frame;
            s_frame_parse(text, &frame);
            const char *expected = NULL;
            for (size_t r = 0; r < rule_count && !expected; r++)
                if (s_reference(lynx_value_at(conditions, r), &frame))
                    expected = lynx_value_get_string(lynx_value_at(conditions, r), "name", NULL);
            s_expect_fire(rules, text, expected);
        }
        lynx_rules_destroy(&rules);
        lynx_value_destroy(&block);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_condition),
        cmocka_unit_test(test_grouped_examples),
        cmocka_unit_test(test_multiple_conditions),
        cmocka_unit_test(test_batches_compact_example),
        cmocka_unit_test(test_tutorial_examples),
        cmocka_unit_test(test_operators_at_threshold),
        cmocka_unit_test(test_unseen_and_nan),
        cmocka_unit_test(test_compact_parsing),
        cmocka_unit_test(test_compact_errors),
        cmocka_unit_test(test_nested_groups),
        cmocka_unit_test(test_short_circuit),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values_fast_path),
        cmocka_unit_test(test_random_rules_match_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
