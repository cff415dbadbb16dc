// SPDX-License-Identifier: MIT
/*
 * ARX identification by linear least squares. Each equation is one sample t
 * from the model's lag on: phi(t) theta = y(t), with
 *   phi(t) = [-y(t-1) .. -y(t-na), u_1(t-nk_1) .. u_1(t-nk_1-nb_1+1), ...]
 *   theta  = [a_1 .. a_na, b_11 .. b_1nb_1, ...]
 * solved by LAPACKE_dgelsd. Stability from the roots of A, the eigenvalues
 * of its companion matrix (LAPACKE_dgeev).
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lapacke.h>

#include <vmscope/arx.h>

#include "monitor/lstsq.h"

int vms_arx_lag(const struct vms_arx_order *o)
{
	int lag = o->na;

	for (int j = 0; j < o->ninputs; j++)
		if (o->nb[j] && o->nk[j] + o->nb[j] - 1 > lag)
			lag = o->nk[j] + o->nb[j] - 1;
	return lag;
}

static int order_valid(const struct vms_arx_order *o)
{
	if (o->na < 0 || o->na > VMS_ARX_MAX_ORDER || o->ninputs < 0 ||
	    o->ninputs > VMS_ARX_MAX_INPUTS)
		return 0;
	for (int j = 0; j < o->ninputs; j++)
		if (o->nb[j] < 0 || o->nb[j] > VMS_ARX_MAX_ORDER || o->nk[j] < 0 ||
		    o->nk[j] > VMS_ARX_MAX_ORDER)
			return 0;
	return 1;
}

static int parameters(const struct vms_arx_order *o)
{
	int d = o->na;

	for (int j = 0; j < o->ninputs; j++)
		d += o->nb[j];
	return d;
}

/* phi(t) into row; y may be measured or simulated output. */
static void regressor(const struct vms_arx_order *o, const double *y, const double *const *u,
		      size_t t, double *row)
{
	int c = 0;

	for (int i = 1; i <= o->na; i++)
		row[c++] = -y[t - (size_t)i];
	for (int j = 0; j < o->ninputs; j++)
		for (int i = 0; i < o->nb[j]; i++)
			row[c++] = u[j][t - (size_t)(o->nk[j] + i)];
}

static double dot_theta(const struct vms_arx_model *m, const double *row)
{
	const struct vms_arx_order *o = &m->order;
	double sum = 0;
	int c = 0;

	for (int i = 0; i < o->na; i++)
		sum += m->a[i] * row[c++];
	for (int j = 0; j < o->ninputs; j++)
		for (int i = 0; i < o->nb[j]; i++)
			sum += m->b[j][i] * row[c++];
	return sum;
}

static void set_theta(struct vms_arx_model *m, const double *theta)
{
	const struct vms_arx_order *o = &m->order;
	int c = 0;

	for (int i = 0; i < o->na; i++)
		m->a[i] = theta[c++];
	for (int j = 0; j < o->ninputs; j++)
		for (int i = 0; i < o->nb[j]; i++)
			m->b[j][i] = theta[c++];
}

/* Mean squared one-step residual over the equations from lag on. */
static double one_step_loss(const struct vms_arx_model *m, const double *y,
			    const double *const *u, size_t n, size_t lag, double *row)
{
	double sum = 0;

	for (size_t t = lag; t < n; t++) {
		double e;

		regressor(&m->order, y, u, t, row);
		e = y[t] - dot_theta(m, row);
		sum += e * e;
	}
	return sum / (double)(n - lag);
}

static void criteria(struct vms_arx_model *m, int d)
{
	double N = (double)m->samples, V = m->loss > DBL_MIN ? m->loss : DBL_MIN;

	m->aic = N * log(V) + 2.0 * d;
	m->fpe = d < N ? V * (1.0 + d / N) / (1.0 - d / N) : INFINITY;
}

/*
 * Scale each column to unit norm (norms into scale), so that series in
 * bytes and in seconds side by side do not make LAPACK's rank cut-off drop
 * the small ones. An all-zero column stays zero (scale 0).
 */
static void equilibrate(double *A, size_t rows, int d, double *scale)
{
	for (int c = 0; c < d; c++) {
		double ss = 0;

		for (size_t r = 0; r < rows; r++)
			ss += A[r * (size_t)d + (size_t)c] * A[r * (size_t)d + (size_t)c];
		scale[c] = sqrt(ss);
		for (size_t r = 0; r < rows && scale[c] > 0; r++)
			A[r * (size_t)d + (size_t)c] /= scale[c];
	}
}

int arx_lstsq(double *A, size_t rows, int d, double *b, double *theta, int *ret_rank)
{
	double *scale = malloc(2 * (size_t)d * sizeof(*scale));
	lapack_int rank = 0, info;

	if (!scale)
		return -ENOMEM;
	equilibrate(A, rows, d, scale);
	info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)rows, d, 1, A, d, b, 1, scale + d,
			      1e-10, &rank);
	for (int c = 0; !info && c < d; c++)
		theta[c] = scale[c] > 0 ? b[c] / scale[c] : 0;
	free(scale);
	if (ret_rank)
		*ret_rank = (int)rank;
	return info ? -EDOM : 0;
}

int vms_arx_fit(const double *y, const double *const *u, size_t n,
		const struct vms_arx_order *order, struct vms_arx_model *ret)
{
	struct vms_arx_model m = { .order = *order };
	double *A, *B, theta[VMS_ARX_MAX_ORDER * (VMS_ARX_MAX_INPUTS + 1)];
	size_t lag, rows;
	int d, err;

	if (!order_valid(order) || !(d = parameters(order)))
		return -EINVAL;
	lag = (size_t)vms_arx_lag(order);
	if (n <= lag || n - lag < (size_t)d + 1)
		return -EINVAL;
	rows = n - lag;
	A = malloc(rows * (size_t)d * sizeof(*A));
	B = malloc(rows * sizeof(*B));
	if (!A || !B) {
		free(A);
		free(B);
		return -ENOMEM;
	}
	for (size_t t = lag; t < n; t++) {
		regressor(order, y, u, t, A + (t - lag) * (size_t)d);
		B[t - lag] = y[t];
	}
	err = arx_lstsq(A, rows, d, B, theta, &m.rank);
	if (!err) {
		set_theta(&m, theta);
		m.samples = rows;
		m.loss = one_step_loss(&m, y, u, n, lag, A); /* A is scratch now */
		criteria(&m, d);
		*ret = m;
	}
	free(A);
	free(B);
	return err;
}

int vms_arx_select(const double *y, const double *const *u, size_t n, int ninputs, int max_na,
		   int max_nb, int max_nk, enum vms_arx_criterion criterion,
		   struct vms_arx_model *ret)
{
	struct vms_arx_model best = { 0 }, m;
	int found = 0, err = -EINVAL;

	if (ninputs < 0 || ninputs > VMS_ARX_MAX_INPUTS)
		return -EINVAL;
	for (int na = 0; na <= max_na; na++)
		for (int nb = 1; nb <= max_nb; nb++)
			for (int nk = 0; nk <= max_nk; nk++) {
				struct vms_arx_order o = { .na = na, .ninputs = ninputs };
				double score, best_score;

				for (int j = 0; j < ninputs; j++) {
					o.nb[j] = nb;
					o.nk[j] = nk;
				}
				err = vms_arx_fit(y, u, n, &o, &m);
				if (err == -ENOMEM)
					return err;
				if (err)
					continue;
				/* A model that diverges in simulation is worth nothing there. */
				if (vms_arx_stable(&m, NULL) != 1)
					continue;
				score = criterion == VMS_ARX_FPE ? m.fpe : m.aic;
				best_score = criterion == VMS_ARX_FPE ? best.fpe : best.aic;
				if (!found || score < best_score) {
					best = m;
					found = 1;
				}
			}
	if (!found)
		return err;
	*ret = best;
	return 0;
}

static void run(const struct vms_arx_model *m, const double *measured, const double *const *u,
		size_t n, const double *y0, double *yhat)
{
	size_t lag = (size_t)vms_arx_lag(&m->order);
	double row[VMS_ARX_MAX_ORDER * (VMS_ARX_MAX_INPUTS + 1)];

	for (size_t t = 0; t < n && t < lag; t++)
		yhat[t] = y0 ? y0[t] : 0.0;
	for (size_t t = lag; t < n; t++) {
		regressor(&m->order, measured ? measured : yhat, u, t, row);
		yhat[t] = dot_theta(m, row);
	}
}

void vms_arx_simulate(const struct vms_arx_model *m, const double *const *u, size_t n,
		      const double *y0, double *yhat)
{
	run(m, NULL, u, n, y0, yhat);
}

void vms_arx_predict(const struct vms_arx_model *m, const double *y, const double *const *u,
		     size_t n, double *yhat)
{
	run(m, y, u, n, y, yhat);
}

double vms_arx_fit_percent(const double *y, const double *yhat, size_t from, size_t n)
{
	double mean = 0, err = 0, spread = 0;

	if (n <= from)
		return NAN;
	for (size_t t = from; t < n; t++)
		mean += y[t];
	mean /= (double)(n - from);
	for (size_t t = from; t < n; t++) {
		err += (y[t] - yhat[t]) * (y[t] - yhat[t]);
		spread += (y[t] - mean) * (y[t] - mean);
	}
	if (spread <= 0)
		return NAN;
	return 100.0 * (1.0 - sqrt(err) / sqrt(spread));
}

int vms_arx_stable(const struct vms_arx_model *m, double *ret_radius)
{
	int na = m->order.na;
	double companion[VMS_ARX_MAX_ORDER * VMS_ARX_MAX_ORDER] = { 0 };
	double re[VMS_ARX_MAX_ORDER], im[VMS_ARX_MAX_ORDER], radius = 0;

	/* z^na + a_1 z^(na-1) + ... + a_na: first row -a, ones below the diagonal. */
	for (int i = 0; i < na; i++) {
		companion[i] = -m->a[i];
		if (i + 1 < na)
			companion[(i + 1) * na + i] = 1.0;
	}
	if (na && LAPACKE_dgeev(LAPACK_ROW_MAJOR, 'N', 'N', na, companion, na, re, im, NULL, 1,
				NULL, 1))
		return -EDOM;
	for (int i = 0; i < na; i++)
		if (hypot(re[i], im[i]) > radius)
			radius = hypot(re[i], im[i]);
	if (ret_radius)
		*ret_radius = radius;
	return radius < 1.0;
}

void vms_arx_impulse(const struct vms_arx_model *m, int input, size_t n, double *ret)
{
	const struct vms_arx_order *o = &m->order;

	memset(ret, 0, n * sizeof(*ret));
	if (input < 0 || input >= o->ninputs)
		return;
	for (size_t t = 0; t < n; t++) {
		double v = 0;

		for (int i = 1; i <= o->na && (size_t)i <= t; i++)
			v -= m->a[i - 1] * ret[t - (size_t)i];
		/* The impulse is at 0: it reaches y(t) through b_ji when t = nk + i - 1. */
		for (int i = 0; i < o->nb[input]; i++)
			if (t == (size_t)(o->nk[input] + i))
				v += m->b[input][i];
		ret[t] = v;
	}
}

static void mean_sd(const double *x, size_t n, double *mean, double *sd)
{
	double s = 0, ss = 0;

	for (size_t t = 0; t < n; t++)
		s += x[t];
	*mean = s / (double)n;
	for (size_t t = 0; t < n; t++)
		ss += (x[t] - *mean) * (x[t] - *mean);
	*sd = sqrt(ss / (double)n);
}

void vms_cross_correlation(const double *x, const double *y, size_t n, int max_lag, double *r)
{
	double mx, my, sx, sy;

	for (int k = 0; k <= max_lag; k++)
		r[k] = 0;
	if (!n)
		return;
	mean_sd(x, n, &mx, &sx);
	mean_sd(y, n, &my, &sy);
	if (sx <= 0 || sy <= 0)
		return;
	for (int k = 0; k <= max_lag && (size_t)k < n; k++) {
		double sum = 0;

		for (size_t t = 0; t + (size_t)k < n; t++)
			sum += (x[t] - mx) * (y[t + (size_t)k] - my);
		r[k] = sum / ((double)n * sx * sy);
	}
}
