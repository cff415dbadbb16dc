// SPDX-License-Identifier: MIT
/*
 * vmscope model fit FILE --input SERIES[,SERIES...] --output SERIES
 *     [--orders NA,NB,NK | --max-orders NA,NB,NK] [--criterion aic|fpe]
 *     [--train FRACTION] [--plot FILE.svg|FILE.png] [--json]
 *
 * Fit an ARX model of one guest series from host series, recorded by
 * record-metrics (CSV or JSON lines): the first part of the rows trains it,
 * the rest validates it in simulation (from the inputs alone, as the model
 * would run between introspection samples). Rows where a chosen series is
 * missing are left out. Series are fitted as deviations from their training
 * means (--no-detrend: as they are).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <vmscope/arx.h>

#include "cli.h"

#define MAX_ROWS (1u << 22)

struct table {
	int ncols;		   /* the chosen series: inputs, then the output */
	char *names[VMS_ARX_MAX_INPUTS + 1];
	double *col[VMS_ARX_MAX_INPUTS + 1];
	double *time;
	size_t rows, cap;
};

static int add_row(struct table *t, double time, const double *v)
{
	for (int c = 0; c < t->ncols; c++)
		if (!isfinite(v[c]))
			return 0;
	if (t->rows >= MAX_ROWS)
		return -E2BIG;
	if (t->rows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;

		for (int c = 0; c <= t->ncols; c++) {
			double **p = c < t->ncols ? &t->col[c] : &t->time;
			double *grown = realloc(*p, cap * sizeof(**p));

			if (!grown)
				return -ENOMEM;
			*p = grown;
		}
		t->cap = cap;
	}
	for (int c = 0; c < t->ncols; c++)
		t->col[c][t->rows] = v[c];
	t->time[t->rows++] = time;
	return 0;
}

/* Which CSV field holds each chosen series; -1 if none. */
static int csv_columns(struct table *t, char *header, int *where)
{
	int field = 0;

	for (int c = 0; c < t->ncols; c++)
		where[c] = -1;
	for (char *save, *name = strtok_r(header, ",\n", &save); name;
	     name = strtok_r(NULL, ",\n", &save), field++)
		for (int c = 0; c < t->ncols; c++)
			if (!strcmp(name, t->names[c]))
				where[c] = field;
	for (int c = 0; c < t->ncols; c++)
		if (where[c] < 0)
			return cli_fail("the file has no series %s", t->names[c]);
	return 0;
}

/* One CSV row: fields may be empty (a missing value), so no strtok. */
static void csv_row(const char *p, const struct table *t, const int *where, double *time,
		    double *v)
{
	*time = NAN;
	for (int c = 0; c < t->ncols; c++)
		v[c] = NAN;
	for (int field = 0;; field++) {
		const char *end = p + strcspn(p, ",\n");

		if (end > p) {
			double x = strtod(p, NULL);

			if (!field)
				*time = x;
			for (int c = 0; c < t->ncols; c++)
				if (where[c] == field)
					v[c] = x;
		}
		if (*end != ',')
			break;
		p = end + 1;
	}
}

static int read_csv(FILE *f, struct table *t, char *header)
{
	int where[VMS_ARX_MAX_INPUTS + 1], err = 0;
	char *line = NULL;
	size_t cap = 0;

	if (csv_columns(t, header, where))
		return 1;
	while (!err && getline(&line, &cap, f) > 0) {
		double v[VMS_ARX_MAX_INPUTS + 1], time;

		csv_row(line, t, where, &time, v);
		err = add_row(t, time, v);
	}
	free(line);
	return err ? cli_fail("cannot hold the series: %s", strerror(-err)) : 0;
}

static int jsonl_row(const char *line, struct table *t)
{
	json_t *row = json_loads(line, 0, NULL);
	double v[VMS_ARX_MAX_INPUTS + 1];
	int err;

	if (!row)
		return 0; /* a torn last line */
	for (int c = 0; c < t->ncols; c++) {
		json_t *x = json_object_get(row, t->names[c]);

		v[c] = json_is_number(x) ? json_number_value(x) : NAN;
	}
	err = add_row(t, json_number_value(json_object_get(row, "time_s")), v);
	json_decref(row);
	return err;
}

static int read_jsonl(FILE *f, struct table *t, const char *first)
{
	int err = jsonl_row(first, t);
	char *line = NULL;
	size_t cap = 0;

	while (!err && getline(&line, &cap, f) > 0)
		err = jsonl_row(line, t);
	free(line);
	return err ? cli_fail("cannot hold the series: %s", strerror(-err)) : 0;
}

static int read_table(const char *path, struct table *t)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t len = 0;
	int status;

	if (!f)
		return cli_fail("cannot read %s: %s", path, strerror(errno));
	if (getline(&line, &len, f) <= 0) {
		fclose(f);
		free(line);
		return cli_fail("%s is empty", path);
	}
	status = line[0] == '{' ? read_jsonl(f, t, line) : read_csv(f, t, line);
	free(line);
	fclose(f);
	return status;
}

static int parse_orders(const char *text, const char *what, int *a, int *b, int *c)
{
	if (sscanf(text, "%d,%d,%d", a, b, c) != 3 || *a < 0 || *b < 1 || *c < 0 ||
	    *a > VMS_ARX_MAX_ORDER || *b > VMS_ARX_MAX_ORDER || *c > VMS_ARX_MAX_ORDER)
		return -cli_fail("bad %s \"%s\": expected NA,NB,NK (NB at least 1, each at most %d)",
				 what, text, VMS_ARX_MAX_ORDER);
	return 0;
}

struct fit_options {
	int orders[3], max_orders[3], fixed, json, keep_means;
	enum vms_arx_criterion criterion;
	double train;
	const char *plot;
};

struct fit_result {
	struct vms_arx_model model;
	double mean[VMS_ARX_MAX_INPUTS + 1]; /* training means taken out before the fit */
	size_t ntrain, nvalid;
	double fit_train, fit_valid, fit_step, radius;
	int stable;
	double *yhat; /* simulation over every row: training, then validation from its own start */
	double impulse[VMS_ARX_MAX_INPUTS][20];
	int peak_lag[VMS_ARX_MAX_INPUTS];
	double peak_r[VMS_ARX_MAX_INPUTS];
};

/*
 * ARX has no constant term: fit deviations from the training means (as
 * system identification does, "detrend"), unless asked not to. The columns
 * are changed in place; yhat gets the output's mean back.
 */
static void take_means(struct table *t, const struct fit_options *o, struct fit_result *r)
{
	for (int c = 0; c < t->ncols; c++) {
		double sum = 0;

		for (size_t i = 0; i < r->ntrain; i++)
			sum += t->col[c][i];
		r->mean[c] = o->keep_means ? 0 : sum / (double)r->ntrain;
		for (size_t i = 0; i < t->rows; i++)
			t->col[c][i] -= r->mean[c];
	}
}

static void give_means_back(struct table *t, struct fit_result *r)
{
	for (int c = 0; c < t->ncols; c++)
		for (size_t i = 0; i < t->rows; i++)
			t->col[c][i] += r->mean[c];
	for (size_t i = 0; i < t->rows; i++)
		r->yhat[i] += r->mean[t->ncols - 1];
}

static int fit_orders(const struct table *t, const struct fit_options *o, struct fit_result *r)
{
	int ninputs = t->ncols - 1, err;
	const double *u[VMS_ARX_MAX_INPUTS];

	for (int j = 0; j < ninputs; j++)
		u[j] = t->col[j];
	if (o->fixed) {
		struct vms_arx_order ord = { .na = o->orders[0], .ninputs = ninputs };

		for (int j = 0; j < ninputs; j++) {
			ord.nb[j] = o->orders[1];
			ord.nk[j] = o->orders[2];
		}
		err = vms_arx_fit(t->col[ninputs], u, r->ntrain, &ord, &r->model);
	} else {
		err = vms_arx_select(t->col[ninputs], u, r->ntrain, ninputs, o->max_orders[0],
				     o->max_orders[1], o->max_orders[2], o->criterion, &r->model);
	}
	if (err)
		return cli_fail("cannot fit %zu training rows: %s", r->ntrain,
				err == -EINVAL ? "too few for the orders, or no stable model"
					       : strerror(-err));
	return 0;
}

static void characterise(const struct table *t, struct fit_result *r)
{
	int ninputs = t->ncols - 1;

	r->stable = vms_arx_stable(&r->model, &r->radius);
	for (int j = 0; j < ninputs; j++) {
		double xc[21];

		vms_arx_impulse(&r->model, j, 20, r->impulse[j]);
		vms_cross_correlation(t->col[j], t->col[ninputs], t->rows, 20, xc);
		for (int k = 0; k <= 20; k++)
			if (fabs(xc[k]) > fabs(r->peak_r[j])) {
				r->peak_r[j] = xc[k];
				r->peak_lag[j] = k;
			}
	}
}

static int fit(struct table *t, const struct fit_options *o, struct fit_result *r)
{
	int ninputs = t->ncols - 1;
	const double *u[VMS_ARX_MAX_INPUTS], *uv[VMS_ARX_MAX_INPUTS], *y = t->col[ninputs];
	size_t lag, n = t->rows;
	double *step;

	r->ntrain = (size_t)((double)n * o->train);
	r->nvalid = n - r->ntrain;
	take_means(t, o, r);
	if (fit_orders(t, o, r)) {
		give_means_back(t, r);
		return 1;
	}
	for (int j = 0; j < ninputs; j++) {
		u[j] = t->col[j];
		uv[j] = u[j] + r->ntrain;
	}
	lag = (size_t)vms_arx_lag(&r->model.order);
	r->yhat = calloc(n, sizeof(*r->yhat));
	step = calloc(n, sizeof(*step));
	if (!r->yhat || !step) {
		free(step);
		return cli_fail("out of memory");
	}
	vms_arx_simulate(&r->model, u, r->ntrain, y, r->yhat);
	vms_arx_simulate(&r->model, uv, r->nvalid, y + r->ntrain, r->yhat + r->ntrain);
	vms_arx_predict(&r->model, y, u, r->ntrain, step);
	/* Fit % is the same with or without the means: both sides lose the same. */
	r->fit_train = vms_arx_fit_percent(y, r->yhat, lag, r->ntrain);
	r->fit_step = vms_arx_fit_percent(y, step, lag, r->ntrain);
	r->fit_valid = vms_arx_fit_percent(y + r->ntrain, r->yhat + r->ntrain, lag, r->nvalid);
	free(step);
	characterise(t, r);
	give_means_back(t, r);
	return 0;
}

static json_t *doubles(const double *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null());
	return a;
}

static json_t *number(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static int print_json(const struct table *t, const struct fit_result *r)
{
	const struct vms_arx_model *m = &r->model;
	json_t *inputs = json_array();

	for (int j = 0; j < m->order.ninputs; j++)
		json_array_append_new(inputs,
				      json_pack("{s:s,s:i,s:i,s:o,s:o,s:i,s:o}", "series", t->names[j],
						"nb", m->order.nb[j], "nk", m->order.nk[j], "b",
						doubles(m->b[j], (size_t)m->order.nb[j]), "impulse",
						doubles(r->impulse[j], 20), "xcorr_peak_lag",
						r->peak_lag[j], "xcorr_peak", number(r->peak_r[j])));
	json_t *means = json_object();

	for (int c = 0; c < t->ncols; c++)
		json_object_set_new(means, t->names[c], number(r->mean[c]));
	return cli_print_json(json_pack(
		"{s:s,s:i,s:o,s:o,s:o,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:b,s:o,s:i}", "output",
		t->names[m->order.ninputs], "na", m->order.na, "means", means, "a",
		doubles(m->a, (size_t)m->order.na), "inputs", inputs, "train_rows",
		(json_int_t)r->ntrain, "validation_rows", (json_int_t)r->nvalid, "fit_train_percent",
		number(r->fit_train), "fit_validation_percent", number(r->fit_valid),
		"fit_one_step_percent", number(r->fit_step), "aic", number(m->aic), "fpe",
		number(m->fpe), "stable", r->stable == 1, "largest_root", number(r->radius), "rank",
		m->rank));
}

static void print_poly(const char *name, const double *c, int n, int monic, int first_power)
{
	printf("  %s(q) = %s", name, monic ? "1" : "");
	for (int i = 0; i < n; i++) {
		int power = i + first_power;

		if (!monic && !i)
			printf("%.6g", c[i]);
		else
			printf(" %c %.6g", c[i] < 0 ? '-' : '+', fabs(c[i]));
		if (power)
			printf(" q^-%d", power);
	}
	putchar('\n');
}

static void print_text(const struct table *t, const struct fit_result *r)
{
	const struct vms_arx_model *m = &r->model;

	printf("%s from", t->names[m->order.ninputs]);
	for (int j = 0; j < m->order.ninputs; j++)
		printf("%s %s", j ? "," : "", t->names[j]);
	printf(": ARX(na %d", m->order.na);
	for (int j = 0; j < m->order.ninputs; j++)
		printf(", nb %d nk %d", m->order.nb[j], m->order.nk[j]);
	printf(")\n");
	print_poly("A", m->a, m->order.na, 1, 1);
	for (int j = 0; j < m->order.ninputs; j++) {
		char name[96];

		snprintf(name, sizeof(name), "B[%s]", t->names[j]);
		print_poly(name, m->b[j], m->order.nb[j], 0, 0);
	}
	printf("  training: %zu rows, fit %.1f %% (simulation), %.1f %% (one step ahead)\n",
	       r->ntrain, r->fit_train, r->fit_step);
	printf("  validation: %zu rows, fit %.1f %% (simulation)\n", r->nvalid, r->fit_valid);
	printf("  %s (largest root of A %.3f); rank %d; AIC %.1f, FPE %.4g\n",
	       r->stable == 1 ? "stable" : "NOT stable", r->radius, m->rank, m->aic, m->fpe);
	for (int j = 0; j < m->order.ninputs; j++) {
		printf("  %s: impulse response", t->names[j]);
		for (int k = 0; k < 8; k++)
			printf(" %.3g", r->impulse[j][k]);
		printf(" ...; cross-correlation peaks at lag %d (r %.2f)\n", r->peak_lag[j],
		       r->peak_r[j]);
	}
}

static int split_inputs(char *list, struct table *t)
{
	for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		if (t->ncols >= VMS_ARX_MAX_INPUTS)
			return cli_fail("at most %d inputs", VMS_ARX_MAX_INPUTS);
		t->names[t->ncols++] = name;
	}
	return t->ncols ? 0 : cli_fail("--input names no series");
}

static int parse_args(int argc, char **argv, struct table *t, struct fit_options *o)
{
	static const struct option options[] = {
		{ "input", required_argument, NULL, 'i' },  { "output", required_argument, NULL, 'o' },
		{ "orders", required_argument, NULL, 'r' }, { "max-orders", required_argument, NULL, 'm' },
		{ "criterion", required_argument, NULL, 'c' }, { "train", required_argument, NULL, 't' },
		{ "plot", required_argument, NULL, 'p' },   { "json", no_argument, NULL, 'j' },
		{ "no-detrend", no_argument, NULL, 'n' },
		{ 0 },
	};
	char *inputs = NULL, *output = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == 'i')
			inputs = optarg;
		else if (opt == 'o')
			output = optarg;
		else if (opt == 'r' && (o->fixed = 1) && parse_orders(optarg, "--orders", &o->orders[0],
								    &o->orders[1], &o->orders[2]))
			return 1;
		else if (opt == 'm' && parse_orders(optarg, "--max-orders", &o->max_orders[0],
						    &o->max_orders[1], &o->max_orders[2]))
			return 1;
		else if (opt == 'c' && strcmp(optarg, "aic") && strcmp(optarg, "fpe"))
			return cli_fail("--criterion %s: not aic or fpe", optarg);
		else if (opt == 'c')
			o->criterion = strcmp(optarg, "aic") ? VMS_ARX_FPE : VMS_ARX_AIC;
		else if (opt == 't' && (sscanf(optarg, "%lf", &o->train) != 1 || !(o->train > 0.1) ||
					!(o->train < 0.95)))
			return cli_fail("--train %s: a fraction between 0.1 and 0.95", optarg);
		else if (opt == 'p')
			o->plot = optarg;
		else if (opt == 'j')
			o->json = 1;
		else if (opt == 'n')
			o->keep_means = 1;
		else if (opt == '?')
			return cli_usage(&cmd_model);
	}
	if (!inputs || !output || optind != argc - 1)
		return cli_usage(&cmd_model);
	if (split_inputs(inputs, t))
		return 1;
	t->names[t->ncols++] = output;
	return -1;
}

static int run_model(int argc, char **argv)
{
	struct fit_options o = { .max_orders = { 4, 4, 2 }, .train = 0.5 };
	struct fit_result r = { 0 };
	struct table t = { 0 };
	int status;

	if (argc < 2 || strcmp(argv[1], "fit"))
		return cli_usage(&cmd_model);
	status = parse_args(argc - 1, argv + 1, &t, &o);
	if (status >= 0)
		return status;
	status = read_table(argv[optind + 1], &t);
	if (!status && t.rows < 20)
		status = cli_fail("%zu usable rows in %s: too few to fit and validate", t.rows,
				  argv[optind + 1]);
	if (!status)
		status = fit(&t, &o, &r);
	if (!status && o.json)
		status = print_json(&t, &r);
	else if (!status)
		print_text(&t, &r);
	if (!status && o.plot)
		status = cli_plot_fit(o.plot, t.time, t.col[t.ncols - 1], r.yhat, t.rows, r.ntrain,
				      t.names[t.ncols - 1], r.impulse[0], 20, t.names[0]);
	free(r.yhat);
	for (int c = 0; c < t.ncols; c++)
		free(t.col[c]);
	free(t.time);
	return status;
}

const struct cli_command cmd_model = {
	.name = "model",
	.usage = "fit FILE --input SERIES[,SERIES...] --output SERIES [--orders NA,NB,NK | "
		 "--max-orders NA,NB,NK] [--criterion aic|fpe] [--train FRACTION] "
		 "[--no-detrend] [--plot FILE.svg|FILE.png] [--json]",
	.summary = "fit an ARX model of a guest series from host series (record-metrics' file)",
	.run = run_model,
};
