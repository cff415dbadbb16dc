// SPDX-License-Identifier: MIT
/*
 * Estimates between introspection samples (see vms_estimator in arx.h).
 * Rings: the inputs of the last nk + nb ticks; the last `window`
 * observations, each its regressor row and measured output, and the
 * estimate that was standing when it came (for the out-of-sample fit).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <vmscope/arx.h>

#include "monitor/lstsq.h"

struct vms_estimator {
	int ninputs, nb, nk, d; /* d: 1 (the constant) + ninputs * nb */
	size_t window, min_obs;
	double *history; /* (nk + nb) ticks of ninputs, newest at ticks % len */
	size_t ticks;
	double *rows, *ys, *prior; /* window observations: regressors, outputs, prior estimates */
	size_t nobs;		   /* observations so far (the ring holds min(nobs, window)) */
	double *theta;
	int fitted;
	double estimate;
	double *A, *b; /* scratch for the fit */
};

int vms_estimator_new(int ninputs, const struct vms_estimator_opts *opts,
		      struct vms_estimator **ret)
{
	struct vms_estimator *e;
	size_t len;

	if (ninputs < 1 || ninputs > VMS_ARX_MAX_INPUTS || (opts && opts->sz != sizeof(*opts)))
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->ninputs = ninputs;
	e->nb = opts && opts->nb ? opts->nb : 2;
	e->nk = opts ? opts->nk : 0;
	e->window = opts && opts->window ? opts->window : 120;
	if (e->nb < 1 || e->nb > VMS_ARX_MAX_ORDER || e->nk < 0 || e->nk > VMS_ARX_MAX_ORDER) {
		free(e);
		return -EINVAL;
	}
	e->d = 1 + ninputs * e->nb;
	e->min_obs = opts && opts->min_observations ? opts->min_observations : (size_t)e->d + 3;
	len = (size_t)(e->nk + e->nb);
	e->history = malloc(len * (size_t)ninputs * sizeof(double));
	e->rows = malloc(e->window * (size_t)e->d * sizeof(double));
	e->ys = malloc(e->window * sizeof(double));
	e->prior = malloc(e->window * sizeof(double));
	e->theta = calloc((size_t)e->d, sizeof(double));
	e->A = malloc(e->window * (size_t)e->d * sizeof(double));
	e->b = malloc((e->window > (size_t)e->d ? e->window : (size_t)e->d) * sizeof(double));
	if (!e->history || !e->rows || !e->ys || !e->prior || !e->theta || !e->A || !e->b) {
		vms_estimator_free(e);
		return -ENOMEM;
	}
	e->estimate = NAN;
	*ret = e;
	return 0;
}

void vms_estimator_free(struct vms_estimator *e)
{
	if (!e)
		return;
	free(e->history);
	free(e->rows);
	free(e->ys);
	free(e->prior);
	free(e->theta);
	free(e->A);
	free(e->b);
	free(e);
}

/* The regressor row for the newest tick: 1, then u_j(t - nk - i); 0 if history is short or NaN. */
static int current_row(const struct vms_estimator *e, double *row)
{
	size_t len = (size_t)(e->nk + e->nb);
	int c = 0;

	if (e->ticks < len)
		return 0;
	row[c++] = 1.0;
	for (int j = 0; j < e->ninputs; j++)
		for (int i = 0; i < e->nb; i++) {
			size_t back = (size_t)(e->nk + i), slot = (e->ticks - 1 - back) % len;
			double v = e->history[slot * (size_t)e->ninputs + (size_t)j];

			if (!isfinite(v))
				return 0;
			row[c++] = v;
		}
	return 1;
}

static double predict(const struct vms_estimator *e)
{
	double row[1 + VMS_ARX_MAX_INPUTS * VMS_ARX_MAX_ORDER], y = 0;

	if (!e->fitted || !current_row(e, row))
		return NAN;
	for (int c = 0; c < e->d; c++)
		y += e->theta[c] * row[c];
	return y;
}

void vms_estimator_input(struct vms_estimator *e, const double *u)
{
	size_t len = (size_t)(e->nk + e->nb), slot = e->ticks % len;

	memcpy(e->history + slot * (size_t)e->ninputs, u, (size_t)e->ninputs * sizeof(*u));
	e->ticks++;
	e->estimate = predict(e);
}

static int refit(struct vms_estimator *e)
{
	size_t n = e->nobs < e->window ? e->nobs : e->window;
	int rank;

	if (n < e->min_obs)
		return 0;
	memcpy(e->A, e->rows, n * (size_t)e->d * sizeof(double));
	memcpy(e->b, e->ys, n * sizeof(double));
	if (arx_lstsq(e->A, n, e->d, e->b, e->theta, &rank))
		return -EDOM;
	e->fitted = 1;
	e->estimate = predict(e);
	return 0;
}

int vms_estimator_observe(struct vms_estimator *e, double y)
{
	double row[1 + VMS_ARX_MAX_INPUTS * VMS_ARX_MAX_ORDER];
	size_t slot;

	if (!isfinite(y) || !current_row(e, row))
		return 0; /* nothing to learn: the inputs of this tick are incomplete */
	slot = e->nobs % e->window;
	memcpy(e->rows + slot * (size_t)e->d, row, (size_t)e->d * sizeof(double));
	e->ys[slot] = y;
	e->prior[slot] = e->estimate;
	e->nobs++;
	return refit(e);
}

double vms_estimator_estimate(const struct vms_estimator *e)
{
	return e->estimate;
}

size_t vms_estimator_observations(const struct vms_estimator *e)
{
	return e->nobs;
}

double vms_estimator_fit_percent(const struct vms_estimator *e)
{
	size_t n = e->nobs < e->window ? e->nobs : e->window, used = 0;
	double ys[1024], prior[1024];

	for (size_t i = 0; i < n && used < 1024; i++)
		if (isfinite(e->prior[i])) {
			ys[used] = e->ys[i];
			prior[used++] = e->prior[i];
		}
	return used >= 2 ? vms_arx_fit_percent(ys, prior, 0, used) : NAN;
}
