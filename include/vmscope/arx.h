/* SPDX-License-Identifier: MIT */
/*
 * vmscope: ARX models that estimate a guest's figures from the host's.
 *
 * ARX(na, nb, nk) with one output y and m inputs u_j, in the convention of
 * system identification texts and MATLAB/Octave's arx:
 *
 *   A(q) y(t) = sum_j B_j(q) u_j(t - nk_j) + e(t)
 *   A(q)   = 1 + a_1 q^-1 + ... + a_na q^-na
 *   B_j(q) = b_j1 + b_j2 q^-1 + ... + b_j,nb_j q^-(nb_j - 1)
 *
 * that is y(t) = -a_1 y(t-1) - ... - a_na y(t-na) + sum_j sum_i b_ji u_j(t-nk_j-i+1)
 * + e(t), one step being one sample period. Fitted by least squares
 * (LAPACK's dgelsd: SVD, so that a constant or collinear input gives the
 * minimum-norm solution and a rank below full instead of garbage).
 */
#ifndef VMSCOPE_ARX_H
#define VMSCOPE_ARX_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMS_ARX_MAX_INPUTS 8
#define VMS_ARX_MAX_ORDER  32

struct vms_arx_order {
	int na;
	int ninputs;
	int nb[VMS_ARX_MAX_INPUTS];
	int nk[VMS_ARX_MAX_INPUTS];
};

struct vms_arx_model {
	struct vms_arx_order order;
	double a[VMS_ARX_MAX_ORDER];			  /* a_1 .. a_na */
	double b[VMS_ARX_MAX_INPUTS][VMS_ARX_MAX_ORDER]; /* b_j1 .. b_j,nb_j */
	double loss;	 /* V: mean squared one-step residual on the training data */
	double aic, fpe; /* Akaike's criterion, N ln V + 2d, and final prediction error */
	size_t samples;	 /* N: equations the fit used */
	int rank;	 /* of the regressor matrix; below the parameter count when deficient */
};

/* Criteria for choosing orders. */
enum vms_arx_criterion { VMS_ARX_AIC, VMS_ARX_FPE };

/*
 * Fit the model of the given order to n samples: y[t], and u[j][t] for each
 * input. 0, -EINVAL for an order out of range or too few samples, -ENOMEM,
 * or -EDOM when LAPACK cannot solve it.
 */
int vms_arx_fit(const double *y, const double *const *u, size_t n,
		const struct vms_arx_order *order, struct vms_arx_model *ret);

/*
 * Try every na in 0..max_na, nb in 1..max_nb and nk in 0..max_nk (the same
 * nb and nk for every input) and keep the best stable model by criterion
 * (an unstable one diverges in simulation). -EINVAL if none fits.
 */
int vms_arx_select(const double *y, const double *const *u, size_t n, int ninputs, int max_na,
		   int max_nb, int max_nk, enum vms_arx_criterion criterion,
		   struct vms_arx_model *ret);

/*
 * Simulate: yhat[t] from the inputs alone, the model's own past outputs
 * standing in for measured ones; the first samples (as many as the model
 * looks back) are taken from y0. With y0 == NULL they are zero.
 */
void vms_arx_simulate(const struct vms_arx_model *m, const double *const *u, size_t n,
		      const double *y0, double *yhat);

/* One-step-ahead prediction: yhat[t] from measured y up to t-1 and the inputs. */
void vms_arx_predict(const struct vms_arx_model *m, const double *y, const double *const *u,
		     size_t n, double *yhat);

/* How far back the model looks: max(na, nk_j + nb_j - 1). */
int vms_arx_lag(const struct vms_arx_order *order);

/*
 * MATLAB's fit: 100 (1 - ||y - yhat|| / ||y - mean(y)||), over samples
 * from..n-1. 100 is perfect; it can be negative. NaN if y is constant.
 */
double vms_arx_fit_percent(const double *y, const double *yhat, size_t from, size_t n);

/*
 * 1 when every root of A(z) lies strictly inside the unit circle (the
 * simulated output cannot grow without bound), 0 when not, -errno when the
 * roots cannot be computed. *ret_radius (if given) is the largest modulus.
 */
int vms_arx_stable(const struct vms_arx_model *m, double *ret_radius);

/* The response of y to a unit impulse on input j at t = 0, for n steps. */
void vms_arx_impulse(const struct vms_arx_model *m, int input, size_t n, double *ret);

/*
 * Normalised cross-correlation of x and y at lags 0..max_lag:
 * r[k] = sum (x[t] - mx)(y[t+k] - my) / (n sx sy), so y following x by k
 * samples peaks at r[k]. Zero where a series is constant.
 */
void vms_cross_correlation(const double *x, const double *y, size_t n, int max_lag, double *r);

/*
 * Online estimation between introspection samples. The host's figures come
 * every tick; the guest's, to learn from, only now and then. A model with no
 * past outputs (ARX with na = 0, plus a constant: y(t) = c + sum_j sum_i
 * b_ji u_j(t - nk - i)) can be fitted from such sparse observations, each
 * one paired with the inputs' history at its tick, and estimates the output
 * at every tick from the inputs alone. It is refitted at each observation
 * from the last `window` ones, so it follows a VM whose behaviour changes.
 */
struct vms_estimator;

struct vms_estimator_opts {
	size_t sz;		 /* sizeof(struct vms_estimator_opts) */
	int nb, nk;		 /* 0: 2 and 0 */
	size_t window;		 /* observations kept; 0: 120 */
	size_t min_observations; /* before the first estimate; 0: parameters + 3 */
};

int vms_estimator_new(int ninputs, const struct vms_estimator_opts *opts,
		      struct vms_estimator **ret);
void vms_estimator_free(struct vms_estimator *e);
/* One tick's inputs (NaN allowed: that tick then has no estimate). */
void vms_estimator_input(struct vms_estimator *e, const double *u);
/* The output measured over the last input's tick; refits. 0 or -errno. */
int vms_estimator_observe(struct vms_estimator *e, double y);
/* The estimate for the last input's tick; NaN until enough observations. */
double vms_estimator_estimate(const struct vms_estimator *e);
/*
 * How good the estimates have been: fit % of the estimates made just before
 * each of the last `window` observations against what was then observed
 * (out of sample: NaN until there are two), and how many observations so far.
 */
double vms_estimator_fit_percent(const struct vms_estimator *e);
size_t vms_estimator_observations(const struct vms_estimator *e);

#ifdef __cplusplus
}
#endif
#endif
